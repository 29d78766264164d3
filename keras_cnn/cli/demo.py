"""``keras-cnn demo``: the main job on bundled data, no download.

Builds ``mobilenet_v3_small`` for 32x32 grayscale input, trains it on scikit-learn's digits
(1,437 training images, the 360 others held out), reports test accuracy, saves the model to
``savedmodels/<name>/<name>.keras``, exports a SavedModel and an int8 ``.tflite`` beside it and
checks the ``.tflite`` file's predictions against Keras on the whole test set. On a 2-core CPU
it takes about three minutes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from keras_cnn import data
from keras_cnn.deploy.export import export_saved_model, export_tflite, run_tflite
from keras_cnn.registry import build
from keras_cnn.training import run as training
from keras_cnn.training.callbacks import save_atomically


def run_demo(model_name="mobilenet_v3_small", *, epochs=12, image_size=32, batch_size=32, learning_rate=3e-3,
             output_dir="savedmodels", seed=0, verbose=2, export=True):
    """Train ``model_name`` on digits and return a summary dict (also printed as JSON)."""
    import keras

    keras.utils.set_random_seed(seed)
    started = time.time()
    train_arrays, test_arrays = data.load_arrays("digits", "train"), data.load_arrays("digits", "test")
    train = data.from_arrays(train_arrays.images, train_arrays.labels, num_classes=10, image_size=image_size,
                             channels=1, batch_size=batch_size, seed=seed,
                             augment=data.Augmentation(translate=0.1))
    test = data.from_arrays(test_arrays.images, test_arrays.labels, num_classes=10, image_size=image_size,
                            channels=1, batch_size=128, shuffle=False)
    model = build(model_name, num_classes=10, input_shape=(image_size, image_size, 1))
    print(f"keras-cnn demo: training {model_name} on scikit-learn digits "
          f"({len(train_arrays.labels)} train / {len(test_arrays.labels)} test images, {image_size}x{image_size}), "
          f"{epochs} epochs")
    training.compile_and_fit(model, train, validation=test, epochs=epochs, learning_rate=learning_rate,
                             warmup_epochs=2, verbose=verbose)
    # The model was compiled for one-hot labels (categorical cross-entropy): evaluate it on the
    # same kind of targets the fit used, not on the pipeline's integer labels.
    loss, accuracy = model.evaluate(training.for_outputs(data.mix_batches(test, 10), model), verbose=0)[:2]
    print(f"keras-cnn demo: Keras test accuracy {accuracy:.4f} on {len(test_arrays.labels)} held-out digits")
    folder = Path(output_dir) / model_name
    model_path = folder / f"{model_name}.keras"
    save_atomically(model, model_path)  # no half-written model file
    summary = {"model": model_name, "dataset": "digits", "epochs": epochs, "image_size": image_size,
               "test_accuracy": round(float(accuracy), 4), "test_loss": round(float(loss), 4),
               "saved": str(model_path)}
    if export:
        summary.update(export_and_check(model, folder, model_name, train_arrays, test_arrays, image_size))
    summary["seconds"] = round(time.time() - started, 1)
    print(json.dumps(summary))
    return summary


def export_and_check(model, folder, model_name, train_arrays, test_arrays, image_size):
    """SavedModel + int8 TFLite; the int8 file is run on the whole test split."""
    import numpy as np

    classes = list(train_arrays.class_names)
    export_saved_model(model, folder / "saved_model", class_names=classes)
    representative = data.prepare_images(train_arrays.images[:256], image_size, 1).numpy()
    test_images = data.prepare_images(test_arrays.images, image_size, 1).numpy()
    tflite_path = folder / f"{model_name}_int8.tflite"
    report = export_tflite(model, tflite_path, quantize="int8", representative_data=representative,
                           verify_data=test_images, class_names=classes)
    tflite_accuracy = float(np.mean(run_tflite(tflite_path, test_images).argmax(-1) == test_arrays.labels))
    print(f"exported {folder / 'saved_model'} and {tflite_path} ({report['size_bytes'] / 1e6:.2f} MB); int8 "
          f"TFLite test accuracy {tflite_accuracy:.4f}, top-1 agreement with Keras "
          f"{report['top1_agreement_vs_keras']:.4f}, {report['xnnpack_partitions']} XNNPACK partition(s)")
    return {"saved_model": str(folder / "saved_model"), "tflite_int8": str(tflite_path),
            "tflite_int8_test_accuracy": round(tflite_accuracy, 4),
            "tflite_int8_top1_agreement": round(report["top1_agreement_vs_keras"], 4),
            "tflite_int8_xnnpack_partitions": report["xnnpack_partitions"],
            "tflite_int8_outside_xnnpack": report["ops_outside_xnnpack"]}


def cmd_demo(args):
    run_demo(args.model, epochs=args.epochs, output_dir=args.output, export=not args.no_export)
    return 0


def add_parsers(sub):
    """Add this group's sub-commands to the ``keras-cnn`` parser."""
    p = sub.add_parser("demo", help="train mobilenet_v3_small on the bundled digits and report test accuracy")
    p.add_argument("--model", default="mobilenet_v3_small")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--output", default="savedmodels", help="folder for the trained model and exports")
    p.add_argument("--no-export", action="store_true", help="skip the SavedModel / int8 TFLite export")
    p.set_defaults(func=cmd_demo)
