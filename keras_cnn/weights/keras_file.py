"""What a Keras ``.weights.h5`` file must carry beside the variables to give a checkpoint's answer.

Keras' weights format holds variables only. A model built with a trained checkpoint also holds the
checkpoint's normalization (an :class:`~keras_cnn.layers.InputNormalization` layer, which has no
variables) and its evaluation transform; built from the bare file, the model would take [0, 1]
images without that normalization and give answers far from the checkpoint's. So
:func:`save_weights` (what ``keras-cnn convert --output FILE.weights.h5`` uses) writes the variables as
Keras does and adds one attribute to the file's root, ``keras_cnn``: a JSON record of the registry
name, input shape, classes and the checkpoint's preprocessing. ``keras_cnn.build(name,
weights="FILE.weights.h5")`` reads it back (:func:`read_metadata`) and puts the normalization in the
model again; Keras itself ignores the attribute, so ``model.load_weights`` still reads the file.

Example:
    >>> import keras_cnn
    >>> from keras_cnn.weights.keras_file import read_metadata, save_weights
    >>> model = keras_cnn.build("resnet18", weights="torchvision")  # doctest: +SKIP
    >>> save_weights(model, "resnet18.weights.h5", name="resnet18")  # doctest: +SKIP
    >>> read_metadata("resnet18.weights.h5")["preprocessing"]["mean"]  # doctest: +SKIP
    [0.485, 0.456, 0.406]
"""

from __future__ import annotations

import json
from pathlib import Path

ATTRIBUTE = "keras_cnn"
FORMAT = "keras_cnn.weights.h5/1"


def save_weights(model, path, *, name: str, preprocessing: dict | None = None):
    """``model.save_weights(path)`` plus the record :func:`read_metadata` returns (``preprocessing``: the
    checkpoint's, as :func:`keras_cnn.deploy.export.checkpoint_preprocessing` gives it, or None)."""
    import h5py

    model.save_weights(path)
    record = {"format": FORMAT, "model": name, "input_shape": list(model.input_shape[1:]),
              "outputs": [list(shape[1:]) for shape in _output_shapes(model)], "preprocessing": preprocessing}
    with h5py.File(path, "a") as file:
        file.attrs[ATTRIBUTE] = json.dumps(record)


def _output_shapes(model):
    shape = model.output_shape
    return shape if isinstance(shape, list) else [shape]


def read_metadata(path) -> dict | None:
    """The record :func:`save_weights` wrote into ``path``, or None (a file from ``model.save_weights``)."""
    import h5py

    try:
        with h5py.File(Path(path), "r") as file:
            raw = file.attrs.get(ATTRIBUTE)
    except OSError as error:
        raise ValueError(f"{path} is not a readable Keras .weights.h5 file: {error}") from error
    if raw is None:
        return None
    record = json.loads(raw if isinstance(raw, str) else bytes(raw).decode())
    return record if isinstance(record, dict) and record.get("format") == FORMAT else None
