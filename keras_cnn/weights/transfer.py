"""Applying a family's :class:`~keras_cnn.models.spec.KeyMap` to a Keras model: all or nothing.

Every variable of every layer is looked up by name, never by order: the layer's path goes through
the map to a reference module prefix, and the layer type names the variable
(``Conv2D.kernel`` <- ``PREFIX.weight``, ``BatchNormalization.moving_variance`` <-
``PREFIX.running_var``, ...) and its layout change:

* ``Conv2D``: PyTorch ``(out, in/groups, kh, kw)`` -> Keras ``(kh, kw, in/groups, out)``;
* ``DepthwiseConv2D``: ``(channels * multiplier, 1, kh, kw)`` -> ``(kh, kw, channels, multiplier)``;
* ``Dense``: ``(out, in)`` -> ``(in, out)``; after a ``Flatten`` of a feature map, the input
  rows are reordered from PyTorch's channel-major flattening to Keras' channel-last one.

Missing keys, unexpected keys and shape mismatches are all collected first and raised together
(``ValueError``); nothing is assigned unless every variable has its value. When the classifier's
size differs from the checkpoint's (a new ``num_classes``), the classifier keeps its fresh
initialization and only the backbone loads: the fine-tuning path.

A model built inside :func:`values_from_checkpoint` draws no random values: ``transfer`` creates each
variable from its checkpoint value (one copy), and only the variables the checkpoint does not hold
(a fresh classifier) from their initializers. Building VGG-16 with its 138M random values and
overwriting them took ~5 s of the ~20 s a load took on 2 cores.
"""

from __future__ import annotations

import contextlib
import logging

import keras
import numpy as np
from keras import layers

log = logging.getLogger("keras_cnn")

_PASS_THROUGH = (layers.Dropout, layers.Activation, layers.ReLU)


def _conv(weight, _layer):
    return weight.transpose(2, 3, 1, 0)


def _depthwise(weight, layer):
    channels_times_multiplier, _, kh, kw = weight.shape
    multiplier = layer.depth_multiplier
    return weight.reshape(channels_times_multiplier // multiplier, multiplier, kh, kw).transpose(2, 3, 0, 1)


def _flattened_map_shape(layer):
    """(H, W, C) of the feature map a ``Flatten`` turned into this Dense layer's input, else None."""
    try:
        tensor = layer.input
        producer = tensor._keras_history.operation
        while isinstance(producer, _PASS_THROUGH):
            tensor = producer.input
            producer = tensor._keras_history.operation
    except (AttributeError, ValueError):
        return None
    if isinstance(producer, layers.Flatten) and len(producer.input.shape) == 4:
        return tuple(producer.input.shape[1:])
    return None


def _dense(weight, layer):
    if weight.ndim == 4 and weight.shape[2:] == (1, 1):  # a 1x1-conv classifier (timm's ResNetV2 head)
        weight = weight[:, :, 0, 0]
    feature_map = _flattened_map_shape(layer)
    if feature_map and None not in feature_map and weight.shape[1] == int(np.prod(feature_map)):
        height, width, channels = feature_map
        # (out, C*H*W) -> (H*W*C, out) in one copy: VGG's first Dense is 25088 x 4096 (411 MB), and the
        # two-reshape form copied it twice (~3 s each on 2 cores)
        outputs = weight.shape[0]
        return np.ascontiguousarray(weight.reshape(outputs, channels, height, width).transpose(2, 3, 1, 0)) \
            .reshape(height * width * channels, outputs)
    return weight.T


def _same(value, _layer):
    return value


def _variables(layer, key_map):
    """``[(keras variable, reference suffix, transform)]`` of a layer's own variables."""
    bias = "bias"
    if isinstance(layer, layers.SeparableConv2D):  # two convs in one layer (key_map.separable names them)
        depthwise, pointwise = key_map.separable
        rows = [(layer.depthwise_kernel, f"{depthwise}.weight", _depthwise),
                (layer.pointwise_kernel, f"{pointwise}.weight", _conv)]
        bias = f"{pointwise}.bias"
    elif isinstance(layer, layers.DepthwiseConv2D):
        rows = [(layer.kernel, "weight", _depthwise)]
    elif isinstance(layer, layers.Conv2D):
        rows = [(layer.kernel, "weight", _conv)]
    elif isinstance(layer, layers.Dense):
        rows = [(layer.kernel, "weight", _dense)]
    elif isinstance(layer, layers.BatchNormalization):
        rows = [(layer.gamma, "weight", _same), (layer.beta, "bias", _same),
                (layer.moving_mean, "running_mean", _same), (layer.moving_variance, "running_var", _same)]
        rows = [row for row in rows if row[0] is not None]
        return rows
    else:
        raise ValueError(f"no weight transfer is defined for the layer type {type(layer).__name__} "
                         f"({layer.name}); its variables are {[v.path for v in layer.weights]}")
    if getattr(layer, "bias", None) is not None:
        rows.append((layer.bias, bias, _same))
    return rows


def _adapt_input_channels(value, variable, layer):
    """An RGB checkpoint's first conv on a one-channel model: the kernel summed over its RGB inputs
    (timm's ``adapt_input_conv``), so a gray image gives what the same gray image in RGB would."""
    shape = tuple(variable.shape)
    if (isinstance(layer, layers.Conv2D) and not isinstance(layer, layers.DepthwiseConv2D) and value.ndim == 4
            and len(shape) == 4 and shape[2] == 1 and value.shape[2] == 3 and value.shape[:2] == shape[:2]
            and value.shape[3] == shape[3] and getattr(layer, "groups", 1) == 1):
        return value.sum(axis=2, keepdims=True)
    return value


def head_layer_names(model, key_map) -> set:
    """Names of the top-level layers of ``model`` that hold the checkpoint's classifier (``key_map.head``)."""
    names = set()
    for top, path, _ in weight_owners(model, with_top=True):
        prefix = key_map.reference_prefix(path)
        if prefix is not None and key_map.is_head(prefix + ".weight"):
            names.add(top.name)
    return names


def weight_owners(model, with_top=False):
    """``(path, layer)`` of every layer, nested ones included, that owns variables itself
    (``(top-level layer, path, layer)`` with ``with_top``)."""
    for top in model.layers:
        for layer in top._flatten_layers(include_self=True, recursive=True):
            own = list(layer._trainable_variables) + list(layer._non_trainable_variables)
            if own:
                path = own[0].path.rsplit("/", 1)[0]
                yield (top, path, layer) if with_top else (path, layer)


def plan(model, state: dict, key_map) -> dict:
    """Match every variable of ``model`` to a key of ``state`` through ``key_map``; assign nothing.

    Returns ``{"assign": [(variable, array)], "missing": [...], "unexpected": [...],
    "mismatched": [...], "fresh_head": [...]}``."""
    state = key_map.canonical(state)
    assign, missing, mismatched, used = [], [], [], set()
    head_rows, head_mismatch = [], False
    for path, layer in weight_owners(model):
        prefix = key_map.reference_prefix(path)
        if prefix is None:
            continue
        for variable, suffix, transform in _variables(layer, key_map):
            key = f"{prefix}.{suffix}"
            if key not in state:
                missing.append(key)
                continue
            used.add(key)
            value = transform(np.asarray(state[key]), layer)
            value = _adapt_input_channels(value, variable, layer)
            ok = tuple(value.shape) == tuple(variable.shape)
            if key_map.is_head(key):
                head_rows.append((variable, value, key))
                head_mismatch |= not ok
            elif ok:
                assign.append((variable, value))
            else:
                mismatched.append(f"{key}: checkpoint {tuple(state[key].shape)} -> {tuple(value.shape)}, "
                                  f"Keras {variable.path} {tuple(variable.shape)}")
    fresh_head = []
    if head_mismatch:  # another number of classes: the classifier starts fresh
        fresh_head = sorted({key for _, _, key in head_rows})
    else:
        assign.extend((variable, value) for variable, value, _ in head_rows)
    unexpected = [key for key in state if key not in used and not key_map.is_ignored(key)
                  and not (key_map.is_head(key) and (fresh_head or not head_rows))]
    return {"assign": assign, "missing": missing, "unexpected": unexpected, "mismatched": mismatched,
            "fresh_head": fresh_head}


def _listing(keys, limit=12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def transfer(model, state: dict, key_map, *, source: str) -> dict:
    """Load ``state`` into ``model`` through ``key_map``; ValueError (and nothing assigned) unless
    every variable finds its key and shape. Returns a short report."""
    matched = plan(model, state, key_map)
    problems = []
    if matched["missing"]:
        problems.append(f"missing keys (the model needs them, {source} lacks them): {_listing(matched['missing'])}")
    if matched["unexpected"]:
        problems.append(f"unexpected keys (in {source}, no Keras variable takes them): "
                        f"{_listing(matched['unexpected'])}")
    if matched["mismatched"]:
        problems.append(f"shape mismatches: {_listing(matched['mismatched'], 6)}")
    if problems:
        raise ValueError(f"{model.name}: cannot load {source}: " + "; ".join(problems) + ". Nothing was loaded.")
    for variable, value in matched["assign"]:
        # no copy where the value has the variable's dtype already (float32 checkpoints)
        value = value.astype(variable.dtype, copy=False) if hasattr(value, "astype") else value
        if _uninitialized(variable):  # built inside values_from_checkpoint: created from the value
            variable._initializer = lambda shape, dtype=None, value=value: value
        else:
            variable.assign(value)
    _initialize(model.variables)
    if matched["fresh_head"]:
        log.warning("keras_cnn: %s: the classifier (%s) has another number of classes than %s; it starts fresh, "
                    "the backbone is loaded", model.name, ", ".join(matched["fresh_head"]), source)
    return {"assigned": len(matched["assign"]), "fresh_head": matched["fresh_head"]}


def _uninitialized(variable) -> bool:
    return getattr(variable, "_value", True) is None and getattr(variable, "_initializer", None) is not None


@contextlib.contextmanager
def values_from_checkpoint():
    """Models built inside draw no initial values (``keras.StatelessScope(initialize_variables=False)``);
    :func:`transfer` then creates each variable from its checkpoint value. The variables of a model that
    is never transferred (an error, a model built to be discarded) are dropped from Keras' list of
    pending initializations when the block ends, so no later scope initializes them."""
    from keras.src.backend.common import global_state

    before = list(global_state.get_global_attribute("uninitialized_variables", []) or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        known = {id(v) for v in before}
        pending = global_state.get_global_attribute("uninitialized_variables", []) or []
        global_state.set_global_attribute("uninitialized_variables", [v for v in pending if id(v) in known])


def _initialize(variables):
    """Create the values of ``variables`` still pending (from the checkpoint where ``transfer`` set it,
    else the layer's initializer)."""
    for variable in variables:
        if _uninitialized(variable):
            variable._deferred_initialize()
