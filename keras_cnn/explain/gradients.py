"""The gradients an explanation needs, on the TensorFlow and PyTorch backends.

Keras 3 has no backend-neutral gradient of an intermediate tensor, so each supported backend gets its own
few lines: ``tf.GradientTape`` and ``torch.autograd.grad``. On JAX (whose gradients need the whole net as a
pure function of its input) :func:`check_backend` raises ``ValueError``; the methods that need only forward
passes (filters, feature maps, occlusion) run on every backend.

The deconvnet of Zeiler & Fergus (2014, https://arxiv.org/abs/1311.2901, section 2.1) is this package's
ordinary backward pass with one rule changed: max pooling routes the signal back through the switches the
forward pass recorded (the gradient of a max pool), convolutions apply their transposed filters (the gradient
of a convolution), and each rectifier passes ``relu(signal)`` rather than the signal masked by where its input
was positive (and local response normalization passes it unchanged). :func:`deconvnet_rectification`
installs that rule on every ReLU / ReLU6 of a model for the
length of a ``with`` block (Springenberg et al. 2015, https://arxiv.org/abs/1412.6806, section 3.4,
describe the deconvnet as this backward pass).
"""

from __future__ import annotations

import contextlib
import weakref

import keras
import numpy as np

from keras_cnn.layers.lrn import LocalResponseNormalization

SUPPORTED_BACKENDS = ("tensorflow", "torch")


def check_backend(method: str) -> None:
    """``ValueError`` naming the backends that give ``method`` its gradients, on any other backend."""
    backend = keras.backend.backend()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f"{method} needs gradients, which keras_cnn.explain computes on the "
                         f"{' and '.join(SUPPORTED_BACKENDS)} backends; this process runs Keras on {backend!r} "
                         "(set KERAS_BACKEND=tensorflow). "
                         "filters, features and occlusion run on every backend")


_SUBMODELS = weakref.WeakKeyDictionary()  # model -> {(layer, output): the functional model giving them}


def _submodel(model, layer_name, output_index):
    """``model``'s input to ``layer_name``'s map (and the output ``output_index``), made once per model."""
    made = _SUBMODELS.setdefault(model, {})
    if (layer_name, output_index) not in made:
        made[layer_name, output_index] = _make_submodel(model, layer_name, output_index)
    return made[layer_name, output_index]


def _make_submodel(model, layer_name, output_index):
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    mapped = model.get_layer(layer_name).output
    if output_index is None:
        return keras.Model(inputs, mapped)
    return keras.Model(inputs, [mapped, model.outputs[output_index]])


def map_gradients(model, images, layer_name, output_index, classes):
    """``(maps, gradients, scores)`` as float32 NumPy: ``layer_name``'s output for each image, the gradient of the
    output ``output_index``'s ``classes[i]`` score of image ``i`` (``classes`` None: its highest score) with
    respect to that map, and every class score (what the output gives: call it inside
    :func:`keras_cnn.training.logits.emitting_logits` for logits). One forward and one backward pass."""
    check_backend("grad-cam")
    sub = _submodel(model, layer_name, output_index)
    count = model.outputs[output_index].shape[-1]

    def picks(scores):  # one-hot rows of the classes asked for, or of each image's best score
        chosen = np.argmax(scores, axis=-1) if classes is None else np.asarray(classes)
        return np.eye(count, dtype="float32")[chosen]

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(images, tf.float32)
        with tf.GradientTape() as tape:
            maps, scores = sub(x, training=False)
            maps, scores = tf.cast(maps, tf.float32), tf.cast(scores, tf.float32)
            score = tf.reduce_sum(scores * picks(scores.numpy()))
        grads = tape.gradient(score, maps)
        return maps.numpy(), grads.numpy(), scores.numpy()
    import torch

    x = keras.ops.convert_to_tensor(images, "float32")
    with torch.enable_grad():
        maps, scores = sub(x, training=False)
        scores = scores.float()
        chosen = torch.as_tensor(picks(scores.detach().cpu().numpy()), device=scores.device)
        (grads,) = torch.autograd.grad((scores * chosen).sum(), maps)
    return tuple(t.detach().float().cpu().numpy() for t in (maps, grads, scores))


def input_gradients(model, images, layer_name, seeds):
    """``(maps, gradients)``: ``layer_name``'s output for each image, and the gradient with respect to the
    image of ``sum(map * seeds)`` (``seeds``: an array of the map's shape; the deconvnet's signal)."""
    check_backend("deconvnet")
    sub = _submodel(model, layer_name, None)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(images, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            maps = tf.cast(sub(x, training=False), tf.float32)
            score = tf.reduce_sum(maps * seeds)
        return maps.numpy(), tape.gradient(score, x).numpy()
    import torch

    x = keras.ops.convert_to_tensor(images, "float32").clone().requires_grad_(True)
    with torch.enable_grad():
        maps = sub(x, training=False).float()
        score = (maps * torch.as_tensor(seeds, device=maps.device)).sum()
        (grads,) = torch.autograd.grad(score, x)
    return maps.detach().cpu().numpy(), grads.detach().cpu().numpy()


def map_values(model, images, layer_name, batch_size=32) -> np.ndarray:
    """``layer_name``'s output for ``images`` as float32 NumPy (forward only: every backend)."""
    sub = _submodel(model, layer_name, None)
    parts = [keras.ops.convert_to_numpy(sub(images[i:i + batch_size], training=False)).astype("float32")
             for i in range(0, len(images), batch_size)]
    return np.concatenate(parts)


# --------------------------------------------------------------------------- the deconvnet's rectification
def _deconv_relu_tensorflow(max_value):
    import tensorflow as tf

    @tf.custom_gradient
    def rectify(x):
        y = tf.nn.relu(x) if max_value is None else tf.clip_by_value(x, 0.0, max_value)

        def backward(dy):
            return tf.nn.relu(dy)

        return y, backward

    return rectify


def _deconv_relu_torch(max_value):
    import torch

    class Rectify(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return torch.relu(x) if max_value is None else torch.clamp(x, 0.0, max_value)

        @staticmethod
        def backward(ctx, dy):
            return torch.relu(dy)

    return Rectify.apply


def _deconv_relu(max_value=None):
    make = _deconv_relu_tensorflow if keras.backend.backend() == "tensorflow" else _deconv_relu_torch
    rectify = make(None if max_value is None else float(max_value))
    function = lambda x, *args, **kwargs: rectify(x)  # noqa: E731
    function.__name__ = "deconvnet_relu"
    return function


def _relu_kind(activation):
    """None, or the ``max_value`` (None for plain ReLU, 6.0 for ReLU6) of a rectifier activation function."""
    if activation is keras.activations.relu:
        return "relu"
    if activation is keras.activations.relu6:
        return 6.0
    return None


def _identity_backward(call):
    """``call``'s forward pass with the identity as its backward pass (``x + stop_gradient(call(x) - x)``)."""

    def function(x, *args, **kwargs):
        return x + keras.ops.stop_gradient(call(x, *args, **kwargs) - x)

    return function


@contextlib.contextmanager
def deconvnet_rectification(model):
    """While open, every ReLU and ReLU6 of ``model`` (``activation=`` of a layer, ``Activation`` and ``ReLU``
    layers) computes its usual forward pass and passes ``relu(signal)`` backward: Zeiler & Fergus'
    deconvnet rectification; local response normalization passes the signal through unchanged (the
    deconvnet has no inverse of it: unpooling, rectification and filtering only). Other layers keep their
    gradients. The model is restored on exit."""
    check_backend("deconvnet")
    changed = []
    try:
        for layer in model._flatten_layers(include_self=False, recursive=True):
            kind = _relu_kind(getattr(layer, "activation", None))
            if isinstance(layer, LocalResponseNormalization):
                changed.append((layer, "call", None))
                layer.call = _identity_backward(type(layer).call.__get__(layer))
            elif kind is not None:
                changed.append((layer, "activation", layer.activation))
                layer.activation = _deconv_relu(None if kind == "relu" else kind)
            elif isinstance(layer, keras.layers.ReLU) and not layer.negative_slope and not layer.threshold:
                changed.append((layer, "call", None))
                layer.call = _deconv_relu(layer.max_value)
        yield model
    finally:
        for layer, attribute, value in reversed(changed):
            if attribute == "call":
                del layer.call
            else:
                setattr(layer, attribute, value)
