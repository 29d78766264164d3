"""What an explanation looks at: the classifier output, the feature levels and layers of a model, the first
layer's filters, the class asked about.

Layers are named by feature level (``"P3"``: the last map at stride 8, as ``keras_cnn.model_info(name)["features"]``
lists them; :mod:`keras_cnn.features`) or by layer name. Unknown names raise ``ValueError`` with close names.
"""

from __future__ import annotations

import difflib
import weakref

import keras
import numpy as np

from keras_cnn.features import find_levels
from keras_cnn.registry import get_spec, levels_of
from keras_cnn.training.run import main_output


def output_index(model) -> int:
    """Index of the class-probability output in ``model.outputs`` (the main head of an auxiliary-head model)."""
    head = main_output(model)
    return list(model.output_names).index(head) if head else 0


_LEVELS = weakref.WeakKeyDictionary()  # model -> its levels (finding them builds a probe of the net)


def feature_levels(model) -> list[dict]:
    """The feature levels of ``model`` at its own input size: ``[{"level", "layer", "channels", "stride", "size"}]``.

    A registry model (its name is a registered name, as ``keras_cnn.build`` names it, and so are run folders'
    and ``.keras`` files' models) gets the levels ``model_info(name)["features"]`` lists, found on its body at
    this input size; any other model the last map at each stride among its graph's cuts."""
    if model not in _LEVELS:
        _LEVELS[model] = _find_feature_levels(model)
    return [dict(level) for level in _LEVELS[model]]


def _find_feature_levels(model) -> list[dict]:
    shape = tuple(model.input_shape[1:])
    try:
        spec = get_spec(model.name)
    except ValueError:
        spec = None
    if spec is not None:
        try:
            levels = levels_of(spec.name, input_shape=shape)
        except ValueError:  # another input than the variant takes, or options the probe lacks
            levels = []
        names = {layer.name for layer in model.layers}
        if levels and all(level["layer"] in names for level in levels):
            return levels
    return find_levels(model, spec.features if spec is not None else None)


def map_layers(model) -> list[str]:
    """Names of the layers whose output is one 4-D map (batch, height, width, channels)."""
    found = []
    for layer in model.layers:
        try:
            output = layer.output
        except (AttributeError, ValueError):  # a layer used at several places has no single output
            continue
        if not isinstance(output, (list, tuple, dict)) and len(output.shape) == 4 and layer is not model.layers[0]:
            found.append(layer.name)
    return found


def resolve_layer(model, layer, levels=None) -> tuple[str, str | None]:
    """``(layer name, level or None)`` of ``layer``: a level name (``"P4"``) or the name of a layer with a 4-D map.

    Example:
        >>> import keras_cnn
        >>> from keras_cnn.explain.targets import resolve_layer
        >>> resolve_layer(keras_cnn.build("alexnet_owt"), "P3")
        ('conv2_relu', 'P3')
    """
    levels = feature_levels(model) if levels is None else levels
    by_level = {level["level"]: level["layer"] for level in levels}
    if not isinstance(layer, str) or not layer:
        raise ValueError(f"{model.name}: a layer is a level name {list(by_level)} or a layer name, "
                         f"received {layer!r}")
    if layer in by_level:
        return by_level[layer], layer
    maps = map_layers(model)
    if layer in maps:
        return layer, next((lv for lv, name in by_level.items() if name == layer), None)
    close = difflib.get_close_matches(layer, list(by_level) + maps, n=5, cutoff=0.6)
    levels_text = ", ".join(f"{lv} ({name})" for lv, name in by_level.items())
    suggestion = f" Did you mean: {', '.join(close)}?" if close else ""
    known = " (it has no 4-D map output)" if layer in {lyr.name for lyr in model.layers} else ""
    raise ValueError(f"{model.name}: unknown layer {layer!r}{known}.{suggestion} Pass a level ({levels_text}) or the "
                     f"name of a layer with a feature map ({len(maps)} of them, e.g. {', '.join(maps[:4])})")


def default_gradcam_layer(levels) -> dict:
    """The deepest level with a map of at least 2x2 (Grad-CAM's last convolutional map), else the deepest."""
    if not levels:
        raise ValueError("the model has no feature map to explain")
    spatial = [level for level in levels if level["size"] >= 2]
    return (spatial or levels)[-1]


def first_conv_layer(model):
    """The first layer (in the graph's order) holding a convolution kernel over the image."""
    for layer in model.layers:
        if kernel_of(layer) is not None:
            return layer
    raise ValueError(f"{model.name} has no convolution layer: no filters to show")


def kernel_of(layer) -> np.ndarray | None:
    """``layer``'s filters as float32 ``(kh, kw, input channels, filters)``, or None for a layer without a 2-D
    kernel. A RepVGG block gives its fused 3x3 kernel (its three branches as one, as deployed); a depthwise
    convolution its one filter per channel (input channels 1)."""
    if hasattr(layer, "fused_weights"):
        return np.asarray(layer.fused_weights()[0], "float32")
    if isinstance(layer, (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
        kernel = keras.ops.convert_to_numpy(layer.depthwise_kernel).astype("float32")
        return kernel.reshape(*kernel.shape[:2], 1, -1)
    kernel = getattr(layer, "kernel", None)
    if kernel is None or len(kernel.shape) != 4:
        return None
    return keras.ops.convert_to_numpy(kernel).astype("float32")


def resolve_class(class_names, value) -> int:
    """The index of class ``value``: an index (int or digits) or one of ``class_names``."""
    count = len(class_names)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        index = int(value)
    elif isinstance(value, str) and value in class_names:
        return list(class_names).index(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        index = int(value)
    else:
        close = difflib.get_close_matches(str(value), [str(c) for c in class_names], n=5, cutoff=0.6)
        suggestion = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown class {value!r}.{suggestion} Pass a class index 0..{count - 1} or a class name "
                         f"(e.g. {', '.join(map(str, list(class_names)[:5]))})")
    if not 0 <= index < count:
        raise ValueError(f"class index {index} is out of range: the model has {count} classes (0..{count - 1})")
    return index
