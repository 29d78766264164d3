"""``keras-cnn demo``: the main job on bundled data, no download.

Builds ``mobilenet_v3_small`` for 32x32 grayscale input, trains it on scikit-learn's digits
(1,437 training images, the 360 others held out), reports test accuracy and saves the model
to ``savedmodels/<name>/<name>.keras``. On a 2-core CPU it takes about two minutes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def run_demo(model_name="mobilenet_v3_small", *, epochs=12, image_size=32, batch_size=32, learning_rate=3e-3,
             output_dir="savedmodels", seed=0, verbose=2):
    """Train ``model_name`` on digits and return a summary dict (also printed as JSON)."""
    import keras

    import keras_cnn
    from keras_cnn import data, training

    keras.utils.set_random_seed(seed)
    started = time.time()
    train_arrays, test_arrays = data.load_arrays("digits", "train"), data.load_arrays("digits", "test")
    train = data.from_arrays(train_arrays.images, train_arrays.labels, num_classes=10, image_size=image_size,
                             channels=1, batch_size=batch_size, seed=seed,
                             augment=data.augmentation(image_size, translate=0.1, seed=seed))
    test = data.from_arrays(test_arrays.images, test_arrays.labels, num_classes=10, image_size=image_size,
                            channels=1, batch_size=128, shuffle=False)
    model = keras_cnn.build(model_name, num_classes=10, input_shape=(image_size, image_size, 1))
    print(f"keras-cnn demo: training {model_name} on scikit-learn digits "
          f"({len(train_arrays.labels)} train / {len(test_arrays.labels)} test images, {image_size}x{image_size}), "
          f"{epochs} epochs")
    training.compile_and_fit(model, train, validation=test, epochs=epochs, learning_rate=learning_rate,
                             warmup_epochs=2, verbose=verbose)
    loss, accuracy = model.evaluate(test, verbose=0)
    folder = Path(output_dir) / model_name
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / f"{model_name}.keras"
    tmp_path = folder / f".{model_name}.tmp.keras"
    model.save(tmp_path)
    os.replace(tmp_path, model_path)  # atomic: no half-written model file
    summary = {"model": model_name, "dataset": "digits", "epochs": epochs, "image_size": image_size,
               "test_accuracy": round(float(accuracy), 4), "test_loss": round(float(loss), 4),
               "seconds": round(time.time() - started, 1), "saved": str(model_path)}
    print(json.dumps(summary))
    return summary
