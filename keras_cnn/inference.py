"""Using a trained model: evaluate a run (or a ``.keras`` file) on a data set, predict image files.

A run folder from :func:`keras_cnn.train` knows its data set, input size and class names
(``config.json``); a bare ``.keras`` file takes its input size from the model and its class names
from a ``config.json`` beside it when there is one.

Example:
    >>> from keras_cnn import inference
    >>> inference.evaluate("runs/lenet5_digits")["test_top1"] > 0.5
    True
    >>> inference.predict("runs/lenet5_digits", ["seven.png"])[0][0]["class"]
    '7'
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

CHECKPOINTS = ("best", "last")


def load_run(path, checkpoint="best"):
    """``(model, RunConfig)`` from a run folder or a ``.keras`` file."""
    import keras

    import keras_cnn  # noqa: F401  (registers the custom layers)
    from keras_cnn.training import RunConfig

    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {list(CHECKPOINTS)}, received {checkpoint!r}")
    path = Path(path)
    if path.is_dir():
        model_file = path / f"{checkpoint}.keras"
        if not model_file.exists():
            model_file = path / "last.keras"
        config_file = path / "config.json"
    elif path.suffix == ".keras" and path.is_file():
        model_file, config_file = path, path.parent / "config.json"
    else:
        raise ValueError(f"expected a run folder (with best.keras / last.keras) or a .keras file, received {path}")
    if not model_file.exists():
        raise ValueError(f"{path} holds no trained model (no {checkpoint}.keras or last.keras)")
    model = keras.saving.load_model(model_file)
    shape = model.input_shape
    if config_file.exists():
        config = RunConfig(**json.loads(config_file.read_text()))
    else:
        config = RunConfig(model=model.name)
    config.image_size, config.channels = int(shape[1]), int(shape[3])
    from keras_cnn.training import num_classes_of

    config.num_classes = num_classes_of(model)
    if len(config.class_names) != config.num_classes:
        config.class_names = [str(i) for i in range(config.num_classes)]
    return model, config


def evaluate(path, dataset=None, *, split=None, checkpoint="best", data_dir=None) -> dict:
    """Test top-1 / top-5 / loss of a run's checkpoint (default: its own data set and test split)."""
    from keras_cnn import data
    from keras_cnn.training import evaluate_model

    model, config = load_run(path, checkpoint)
    if dataset is not None and dataset != config.dataset:
        config = dataclasses.replace(config, dataset=dataset, data_dir=data_dir)
    elif data_dir is not None:
        config = dataclasses.replace(config, data_dir=data_dir)
    if split is not None:
        config = dataclasses.replace(config, test_split=split)
    arrays = data.load_arrays(config.dataset, config.test_split, config.data_dir)
    if arrays.labels.max() >= config.num_classes:
        raise ValueError(f"{config.dataset} has labels up to {arrays.labels.max()} but the model predicts "
                         f"{config.num_classes} classes")
    summary = evaluate_model(model, arrays, config)
    summary["checkpoint"] = str(path)
    return summary


def load_images(files, image_size, channels, resize="bilinear", data_size=None) -> np.ndarray:
    """Image files -> float32 [N, size, size, channels] in [0, 1], the models' input convention
    (``resize="pad"``: scaled to the training data's ``data_size``, then padded as in training)."""
    from PIL import Image

    from keras_cnn.data import prepare_images

    arrays = []
    for file in files:
        file = Path(file)
        if not file.is_file():
            raise ValueError(f"no such image file: {file}")
        image = Image.open(file).convert("L" if channels == 1 else "RGB")
        size = data_size if resize == "pad" and data_size else image_size
        arrays.append(np.asarray(image.resize((size, size)), "uint8").reshape(size, size, -1))
    return prepare_images(np.stack(arrays), image_size, channels, resize).numpy()


def predict(path, files, *, top=5, checkpoint="best") -> list[list[dict]]:
    """For every image file, the ``top`` classes as ``{"class", "index", "probability"}``, best first."""
    from keras_cnn.training import main_output

    model, config = load_run(path, checkpoint)
    images = load_images(files, config.image_size, config.channels, config.resize, config.data_size)
    outputs = model.predict(images, verbose=0)
    if main_output(model):
        outputs = outputs[main_output(model)] if isinstance(outputs, dict) else outputs[0]
    results = []
    for row in np.asarray(outputs, "float64"):
        order = np.argsort(-row)[:top]
        results.append([{"class": config.class_names[i], "index": int(i), "probability": round(float(row[i]), 4)}
                         for i in order])
    return results
