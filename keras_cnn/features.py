"""Multi-scale feature maps by stride: the C1...C5 maps that detection and segmentation heads read.

``keras_cnn.build(name, features=True)`` (or ``features=("P3", "P4", "P5")``) returns a functional
model whose outputs are a dict of feature maps named by stride as KerasHub names its
``pyramid_outputs``: ``"Pn"`` is the map at stride ``2**n`` (``"P0"`` the full-resolution one of
the nets that have it: VGG, Darknet, the CIFAR ResNets).

**Which map is a level.** Each level is the *last* map at its stride, taken where the reference
takes it: timm's ``feature_info`` for the nets timm has (``timm.create_model(..., features_only=True)``
gives the same maps), the paper's stage ends for the others. By default the last map at a stride
is the last layer whose output alone carries the whole computation onward (a *cut* of the graph:
no earlier tensor is read after it), which is a stage's end in every plain or residual net. A
family whose reference draws the line elsewhere declares :class:`~keras_cnn.models.spec.FeatureLevels`:
a pattern of the layer names that may be levels (DenseNet's dense-block outputs before the
transition, MobileNet's block outputs rather than the next block's expansion, the pre-activation
sums of ResNet v2), optionally per level.

**Stride.** A map of size ``h`` from an input of size ``H`` has the stride ``s``, a power of two,
for which ``h <= ceil(H / s)`` and ``h > ceil(H / (2 s))``: ``ceil(H / s)`` exactly where the net pads
"same", a little less where it convolves "valid" (Inception v3 at 299: 147, 71, 35, 17, 8).

Example:
    >>> import keras_cnn
    >>> backbone = keras_cnn.build("darknet53", features=("P3", "P4", "P5"), input_shape=(416, 416, 3))
    >>> {level: tuple(map_.shape) for level, map_ in backbone.output.items()}
    {'P3': (None, 52, 52, 256), 'P4': (None, 26, 26, 512), 'P5': (None, 13, 13, 1024)}
"""

from __future__ import annotations

import math
import re

import keras

from keras_cnn.layers.input_normalization import InputNormalization

#: Layers that are never a level: they only pad or normalize the input of the next layer.
NOT_LEVELS = (keras.layers.InputLayer, keras.layers.ZeroPadding2D, InputNormalization)


def level_name(stride: int) -> str:
    """``"P{log2(stride)}"``: KerasHub's name of the level at ``stride``."""
    return f"P{int(math.log2(stride))}"


def stride_of(input_size: int, size: int) -> int:
    """The stride (a power of two) of a map of ``size`` pixels from an input of ``input_size``:
    the ``s`` with ``ceil(input_size / (2 s)) < size <= ceil(input_size / s)``; a 1x1 map has the
    stride of the smallest ``s >= input_size`` (LeNet-5's C5)."""
    stride = 1
    while size <= math.ceil(input_size / (2 * stride)) and 2 * stride <= input_size:
        stride *= 2
    return stride


def _graph_cuts(model) -> set[str]:
    """Names of the layers whose output alone carries the computation onward: no layer before them
    (in the model's topological order) feeds a layer after them."""
    layers = model.layers
    index = {id(layer): i for i, layer in enumerate(layers)}
    cuts, reach = set(), -1  # reach: the furthest layer that a layer seen so far feeds
    for i, layer in enumerate(layers):
        if i > 0 and reach <= i:
            cuts.add(layer.name)
        for node in layer._outbound_nodes:
            reach = max(reach, index.get(id(node.operation), i))
    return cuts


def _map_shape(layer):
    output = layer.output
    if isinstance(output, (list, tuple, dict)) or len(output.shape) != 4:
        return None
    return tuple(output.shape)


def find_levels(model, declared=None) -> list[dict]:
    """The feature levels of a keras_cnn body: ``[{"level", "layer", "channels", "stride", "size"}]``
    by increasing stride (``size``: the map's height at the model's input size).

    ``declared`` is the family's :class:`~keras_cnn.models.spec.FeatureLevels` (None: every cut of
    the graph is a candidate). The model must have a static input height (a model with a dynamic one
    is named by a probe at the default input: :func:`keras_cnn.registry.levels_of` does)."""
    height = model.input_shape[1]
    if height is None:
        raise ValueError("feature levels are found on a model with a static input height; received "
                         f"input_shape={model.input_shape}")
    cuts = _graph_cuts(model)
    chosen = {}
    for layer in model.layers:
        shape = _map_shape(layer)
        if shape is None or isinstance(layer, NOT_LEVELS):
            continue
        stride = stride_of(height, shape[1])
        level = level_name(stride)
        if declared is not None and level in declared.layers:
            candidate = re.fullmatch(declared.layers[level], layer.name)
        elif declared is not None and declared.candidates:
            candidate = re.fullmatch(declared.candidates, layer.name)
        else:
            candidate = layer.name in cuts
        if candidate:
            chosen[stride] = {"level": level, "layer": layer.name, "channels": int(shape[-1]), "stride": stride,
                              "size": int(shape[1])}
    return [chosen[stride] for stride in sorted(chosen)]


def select(levels: list[dict], features, name: str) -> list[dict]:
    """The levels ``features`` asks for: True (all), or names such as ``("P3", "P4", "P5")``."""
    available = [level["level"] for level in levels]
    if features is True:
        return levels
    if isinstance(features, str):
        features = (features,)
    try:
        wanted = list(features)
    except TypeError:
        wanted = None
    if not wanted or not all(isinstance(w, str) for w in wanted):
        raise ValueError(f"{name}: features must be True or level names such as ('P3', 'P4', 'P5'), "
                         f"received {features!r}; available levels: {available}")
    unknown = [w for w in wanted if w not in available]
    if unknown:
        raise ValueError(f"{name}: unknown feature level(s) {unknown}; {name} has {available} "
                         "(Pn is the map at stride 2**n)")
    return [level for level in levels if level["level"] in wanted]


def feature_model(body, levels: list[dict], name: str):
    """A functional model with ``body``'s input and a dict output ``{level: map}`` (stride order). Each
    map passes an identity layer named by its level, so that the level names are the model's output
    names (``model.output_names``, the SavedModel signature's and the TFLite file's output names)."""
    outputs = {level["level"]: keras.layers.Identity(name=level["level"])(body.get_layer(level["layer"]).output)
               for level in levels}
    return keras.Model(body.inputs, outputs, name=f"{name}_features")
