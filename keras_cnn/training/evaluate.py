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
from keras_cnn.data import load_images
from keras_cnn.deploy import calibration
from keras_cnn.deploy.export import checkpoint_preprocessing
from keras_cnn.registry import build, get_spec
from keras_cnn.training.run import RunConfig, evaluate_model, main_output, num_classes_of
from keras_cnn.weights import IMAGENET, class_names

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
    """The class names of the data set the model's checkpoint was trained on (ImageNet-1k's 1,000,
    CIFAR-10's ten) when its classifier is the checkpoint's, else the indices. A model saved before
    checkpoints recorded their data set, with 1,000 classes, is an ImageNet one."""
    record = checkpoint_preprocessing(model)
    if record:
        names = class_names(record.get("dataset") or (IMAGENET if num_classes == 1000 else ""))
        if len(names) == num_classes:
            return names
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


def input_config(model, config=None):
    """The :class:`RunConfig` that says how image files become ``model``'s input: ``config`` (a run's, or a
    ``.keras`` file's) when given, else one read off the model itself (a registry name: its input size and
    channels, bilinear resizing, and :func:`default_class_names`)."""
    if config is not None:
        return config
    shape = model.input_shape
    classes = num_classes_of(model)
    return RunConfig(model=model.name, dataset=None, image_size=int(shape[1]), channels=int(shape[3]),
                     num_classes=classes, class_names=default_class_names(model, classes))


def load_inputs(model, config, files) -> np.ndarray:
    """Image files (or folders of them) as ``model``'s float input ``[N, size, size, channels]``, preprocessed
    as :func:`predict` does: the run's size, channels and resize mode, a checkpoint's resize and center crop
    (``config`` None: :func:`input_config` of the model)."""
    config = input_config(model, config)
    return load_images(files, config.image_size, config.channels, config.resize, config.data_size,
                       checkpoint=checkpoint_preprocessing(model))


def run_images(config, count=calibration.DEFAULT_COUNT):
    """``(train, test)`` float images of a run's own data set at its input size (the first ``count`` of
    each), or ``(None, None)`` when the data is not here or not known (a ``.keras`` file without its
    run's ``config.json``)."""
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


def export_calibration(model, config=None, source=None, count=calibration.DEFAULT_COUNT):
    """``(calibration, verification)`` for an int8 (or dynamic) export of ``model``: the
    :class:`~keras_cnn.deploy.calibration.Calibration` its activation ranges are set from, and float
    images to check the file against Keras on.

    ``source`` None: a run's own training images when ``config`` is a run whose data is here, else the
    natural photos bundled with keras_cnn; ``"run"``: the run's own (an error when there are none);
    anything else as :func:`keras_cnn.deploy.calibration.resolve` takes it (an image folder or file, a
    data set name, ``"bundled"``). Verification: the run's test images when it has them, else the
    calibration images themselves (what the file will meet, rather than random noise)."""
    shape = (1, *model.input_shape[1:])
    train = test = None
    if config is not None and config.dataset and source in (None, "run"):
        train, test = run_images(config, count)
    if source == "run" and train is None:
        where = f"run {config.model}'s data set {config.dataset!r} is not on this machine" if config else \
            "the model is not a run folder"
        raise ValueError(f"--calibration-data run: {where}; pass an image folder or a data set name instead")
    if train is not None:
        found = calibration.Calibration(train, f"{len(train)} images of the run's own training data ({config.dataset} "
                                               f"{config.train_split} split, the first {len(train)})")
    else:
        found = calibration.resolve(source, shape, count=count, checkpoint=checkpoint_preprocessing(model),
                                    resize=config.resize if config else "bilinear",
                                    data_size=config.data_size if config else None,
                                    data_dir=config.data_dir if config and source == config.dataset else None)
    verify = test if test is not None else (found.images[:64] if not callable(found.images) else None)
    return found, verify


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


def predict(path, files, *, top=5, checkpoint="best") -> list[list[dict]]:
    """For every image file, the ``top`` classes as ``{"class", "index", "probability"}``, best first."""
    model, config = load_run(path, checkpoint)
    images = load_inputs(model, config, files)
    outputs = model.predict(images, verbose=0)
    if main_output(model):
        outputs = outputs[main_output(model)] if isinstance(outputs, dict) else outputs[0]
    results = []
    for row in np.asarray(outputs, "float64"):
        order = np.argsort(-row)[:top]
        results.append([{"class": config.class_names[i], "index": int(i), "probability": round(float(row[i]), 4)}
                         for i in order])
    return results
