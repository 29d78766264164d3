"""Fit softmax classifiers on their logits on every Keras backend.

Keras' TensorFlow backend computes the cross-entropy of a softmax output from the softmax's
input (the logits). The JAX and PyTorch backends receive only the probabilities: they clip them
to ``[1e-7, 1 - 1e-7]`` and take the log, so a saturated softmax (a wrong class more than about
16 logits ahead) passes no gradient at all. LeNet-5's RBF output layer (LeCun et al. 1998,
sec. II.B) emits squared distances in the hundreds: on JAX it started saturated and never
learned (test accuracy 0.1 on digits), while the same run on TensorFlow trained.

:func:`fitting_on_logits` makes every backend behave like TensorFlow: while it is open, each
output layer whose activation is softmax computes its logits instead, and the compiled model's
categorical cross-entropy losses are switched to ``from_logits=True``; when it closes, the softmax and the
probability losses are back and the traced train/test/predict functions are dropped.
:func:`saving_probabilities` restores the softmax for the length of a ``model.save`` inside the
fit, so checkpoints always hold the probability model. Accuracy and top-k metrics are the same on
logits and probabilities.

Example:
    >>> import keras, numpy as np, keras_cnn
    >>> from keras_cnn.training.logits import fitting_on_logits
    >>> model = keras_cnn.build("lenet5", num_classes=10)
    >>> model.compile("adam", keras.losses.CategoricalCrossentropy())
    >>> with fitting_on_logits(model):
    ...     _ = model.fit(np.zeros((8, 32, 32, 1)), np.eye(10)[np.arange(8)], verbose=0)
    >>> model.get_layer("predictions").activation.__name__
    'softmax'
"""

from __future__ import annotations

import contextlib

import keras

_SOFTMAX_ATTRIBUTE = "_keras_cnn_softmax"


def softmax_output_layers(model):
    """The layers that produce ``model``'s outputs with a softmax activation."""
    found = []
    for tensor in model.outputs:
        layer = tensor._keras_history.operation
        activation = getattr(layer, "activation", None)
        if getattr(activation, "__name__", None) == "softmax" and layer not in found:
            found.append(layer)
    return found


def _compiled_losses(model):
    loss = getattr(model, "loss", None)
    losses = loss.values() if isinstance(loss, dict) else loss if isinstance(loss, (list, tuple)) else [loss]
    return [item for item in losses if isinstance(item, keras.losses.CategoricalCrossentropy)]


def _set_logits(model, layers, logits):
    for layer in layers:
        layer.activation = keras.activations.linear if logits else getattr(layer, _SOFTMAX_ATTRIBUTE)
    for loss in _compiled_losses(model):
        loss.from_logits = logits
        loss._fn_kwargs["from_logits"] = logits  # what LossFunctionWrapper passes to the loss function


def _marked_layers(model):
    return [layer for layer in model.layers if hasattr(layer, _SOFTMAX_ATTRIBUTE)]


def _drop_traced_functions(model):
    model.train_function = model.test_function = model.predict_function = None


@contextlib.contextmanager
def fitting_on_logits(model):
    """Around ``model.fit`` of a compiled model: softmax outputs emit logits, losses take logits.

    On the TensorFlow backend nothing changes (Keras already uses the logits there).
    """
    layers = [] if keras.backend.backend() == "tensorflow" else softmax_output_layers(model)
    for layer in layers:
        setattr(layer, _SOFTMAX_ATTRIBUTE, layer.activation)
    if layers:
        _set_logits(model, layers, True)
        _drop_traced_functions(model)
    try:
        yield model
    finally:
        if layers:
            _set_logits(model, layers, False)
            for layer in layers:
                delattr(layer, _SOFTMAX_ATTRIBUTE)
            _drop_traced_functions(model)


@contextlib.contextmanager
def emitting_logits(model):
    """While open, ``model``'s softmax outputs give their logits (the softmax's input), on every backend;
    the compiled losses are left as they are. For reading a class score before the softmax, as Grad-CAM
    does (:mod:`keras_cnn.explain`); call the model eagerly inside (traced functions are not dropped)."""
    layers = [layer for layer in softmax_output_layers(model) if not hasattr(layer, _SOFTMAX_ATTRIBUTE)]
    saved = [layer.activation for layer in layers]
    for layer in layers:
        layer.activation = keras.activations.linear
    try:
        yield model
    finally:
        for layer, activation in zip(layers, saved):
            layer.activation = activation


@contextlib.contextmanager
def saving_probabilities(model):
    """Inside :func:`fitting_on_logits`: the model as saved, with its softmax and probability loss."""
    layers = _marked_layers(model)
    if layers:
        _set_logits(model, layers, False)
    try:
        yield model
    finally:
        if layers:
            _set_logits(model, layers, True)
