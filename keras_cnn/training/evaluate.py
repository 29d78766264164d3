"""Using a trained model: evaluate a run (or a ``.keras`` file) on a data set, predict image files.

A run folder from :func:`keras_cnn.train` knows its data set, input size and class names
(``config.json``); a bare ``.keras`` file takes its input size from the model and its class names
and data set from a ``config.json`` beside it when there is one (without one, its data set is
unknown: :func:`evaluate` needs ``dataset``).

Example:
    >>> from keras_cnn.training import evaluate as inference
    >>> inference.evaluate("runs/lenet5_digits")["test_top1"] > 0.5
    True
    >>> inference.predict("runs/lenet5_digits", ["seven.png"])[0][0]["class"]
    '7'
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np

from keras_cnn import data
from keras_cnn.deploy.export import checkpoint_preprocessing
from keras_cnn.registry import build, get_spec
from keras_cnn.training.run import RunConfig, evaluate_model, main_output, num_classes_of
from keras_cnn.weights import imagenet_class_names

CHECKPOINTS = ("best", "last")


def load_model_file(path):
    """``keras.saving.load_model`` of a ``.keras`` file, with one clear ``ValueError`` for a file that is
    missing, empty, truncated or not a Keras model (after ``import keras_cnn``, so every custom layer
    is known)."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such model file: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty, not a .keras model file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a .keras model file (not a zip archive: truncated or another format)")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # Keras raises many types for damaged archives; report one clear error
        raise ValueError(f"{path} could not be loaded as a Keras model: {type(error).__name__}: "
                         f"{_first_line(error)}") from error


def _first_line(error) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no details"


def _check_classifier(model, source):
    """keras_cnn runs take one image input and give class probabilities."""
    shape = getattr(model, "input_shape", None)
    if not isinstance(shape, tuple) or len(shape) != 4 or shape[1] is None or shape[3] is None:
        raise ValueError(f"{source} is not a keras_cnn image classifier: it takes input of shape {shape}, "
                         "not one (batch, height, width, channels) image")
    head = main_output(model)
    index = list(model.output_names).index(head) if head else 0
    if len(model.outputs[index].shape) != 2:
        raise ValueError(f"{source} is not a keras_cnn image classifier: its output has shape "
                         f"{tuple(model.outputs[index].shape)}, not (batch, classes)")


def load_run(path, checkpoint="best"):
    """``(model, RunConfig)`` from a run folder or a ``.keras`` file (its ``dataset`` None when no run
    ``config.json`` says which data set the model was trained on)."""
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {list(CHECKPOINTS)}, received {checkpoint!r}")
    path = Path(path)
    if path.is_dir():
        model_file = path / f"{checkpoint}.keras"
        if not model_file.exists():
            model_file = path / "last.keras"
        config_file = path / "config.json"
        if not model_file.exists():
            raise ValueError(f"{path} holds no trained model (no {checkpoint}.keras or last.keras): "
                             "a run folder gets its first checkpoint when its first epoch ends")
    elif path.suffix == ".keras" and path.exists():
        model_file, config_file = path, path.parent / "config.json"
    else:
        raise ValueError(f"expected a run folder (with best.keras / last.keras) or a .keras file, "
                         f"received {str(path)!r}, which does not exist")
    model = load_model_file(model_file)
    _check_classifier(model, model_file)
    shape = model.input_shape
    config = _read_run_config(config_file) if config_file.exists() else None
    config = config or RunConfig(model=model.name, dataset=None)
    config.image_size, config.channels = int(shape[1]), int(shape[3])
    config.num_classes = num_classes_of(model)
    if len(config.class_names) != config.num_classes:
        config.class_names = default_class_names(model, config.num_classes)
    return model, config


def default_class_names(model, num_classes: int) -> list[str]:
    """ImageNet's names for a model with an ImageNet checkpoint's 1,000 classes, else the indices."""
    if num_classes == 1000 and checkpoint_preprocessing(model):
        return imagenet_class_names()
    return [str(i) for i in range(num_classes)]


def _read_run_config(path):
    """The run's ``config.json``, or None when it is not one (a ``.keras`` file beside some other config)."""
    try:
        stored = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable run config: {error}") from error
    if not isinstance(stored, dict) or "model" not in stored:
        return None
    known = {f.name for f in dataclasses.fields(RunConfig)}
    return RunConfig(**{k: v for k, v in stored.items() if k in known})


def load_model_source(source, checkpoint="best", **build_kwargs):
    """``(model, name, config)`` from what ``keras-cnn export`` takes: a run folder, a ``.keras`` file
    (``config``: its :class:`RunConfig`, class names included), or a registry name (built with
    ``build_kwargs``, random weights; ``config`` None)."""
    path = Path(str(source))
    looks_like_path = path.exists() or path.suffix == ".keras" or "/" in str(source) or "\\" in str(source)
    if looks_like_path:
        model, config = load_run(path, checkpoint)
        if build_kwargs:
            raise ValueError(f"{sorted(build_kwargs)} apply to a registry name; {source!r} is a saved model, "
                             "whose shape and classes are fixed")
        name = path.name if path.is_dir() else path.stem
        return model, name, config
    spec = get_spec(source)
    return build(spec.name, **build_kwargs), spec.name, None


def calibration_images(config, count=256):
    """``(representative, verification)`` float images of a run's own data set, for int8 calibration
    and for checking a quantized export on real images; ``(None, None)`` when the data is not here
    or not known (a ``.keras`` file without its run's ``config.json``)."""
    if config.dataset is None:
        return None, None
    try:
        train = data.load_arrays(config.dataset, config.train_split, config.data_dir)
        test = data.load_arrays(config.dataset, config.test_split, config.data_dir)
    except ValueError:
        return None, None
    prepare = lambda images: data.prepare_images(images[:count], config.image_size, config.channels,  # noqa: E731
                                                  config.resize).numpy()
    return prepare(train.images), prepare(test.images)


def evaluate(path, dataset=None, *, split=None, checkpoint="best", data_dir=None) -> dict:
    """Test top-1 / top-5 / loss of a run's checkpoint (default: its own data set and test split; a
    ``.keras`` file without its run's ``config.json`` beside it needs ``dataset``)."""
    model, config = load_run(path, checkpoint)
    if dataset is None and config.dataset is None:
        raise ValueError(f"{path} has no run config.json beside it, so the data set it was trained on is unknown; "
                         "name the one to score it on (--dataset / dataset=: digits, fashion_mnist, mnist, folder "
                         "with --data-dir, or a tfds name)")
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


def center_crop(image, size: int, resize_size: int, crop_size: int, interpolation: str = "bilinear"):
    """A checkpoint's evaluation transform at the model's ``size``: the shorter side resized to
    ``size * resize_size / crop_size`` (256 for 224 in torchvision), then the central ``size`` x
    ``size`` square (a PIL image in, a PIL image out)."""
    from PIL import Image

    methods = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}
    shorter = max(size, round(size * resize_size / crop_size))
    width, height = image.size
    scale = shorter / min(width, height)
    image = image.resize((max(size, round(width * scale)), max(size, round(height * scale))),
                         methods.get(interpolation, Image.BILINEAR))
    left, top = (image.size[0] - size) // 2, (image.size[1] - size) // 2
    return image.crop((left, top, left + size, top + size))


def load_images(files, image_size, channels, resize="bilinear", data_size=None, checkpoint=None) -> np.ndarray:
    """Image files -> float32 [N, size, size, channels] in [0, 1], the models' input convention
    (``resize="pad"``: scaled to the training data's ``data_size``, then padded as in training;
    ``checkpoint``: a pretrained checkpoint's preprocessing, whose resize and center crop apply)."""
    arrays = []
    for file in data.image_files(files):
        image = data.read_image(file, "L" if channels == 1 else "RGB")
        if checkpoint and checkpoint.get("crop_size") and checkpoint.get("resize_size"):
            image = center_crop(image, image_size, checkpoint["resize_size"], checkpoint["crop_size"],
                                checkpoint.get("interpolation", "bilinear"))
        size = data_size if resize == "pad" and data_size else image_size
        arrays.append(np.asarray(image.resize((size, size)), "uint8").reshape(size, size, -1))
    return data.prepare_images(np.stack(arrays), image_size, channels, resize).numpy()


def predict(path, files, *, top=5, checkpoint="best") -> list[list[dict]]:
    """For every image file, the ``top`` classes as ``{"class", "index", "probability"}``, best first."""
    model, config = load_run(path, checkpoint)
    images = load_images(files, config.image_size, config.channels, config.resize, config.data_size,
                         checkpoint=checkpoint_preprocessing(model))
    outputs = model.predict(images, verbose=0)
    if main_output(model):
        outputs = outputs[main_output(model)] if isinstance(outputs, dict) else outputs[0]
    results = []
    for row in np.asarray(outputs, "float64"):
        order = np.argsort(-row)[:top]
        results.append([{"class": config.class_names[i], "index": int(i), "probability": round(float(row[i]), 4)}
                         for i in order])
    return results
