"""The five views, as arrays: first-layer filters, feature maps, deconvnet projections, occlusion
sensitivity and Grad-CAM.

Each function takes a Keras model and images as the model takes them (float32 ``[N, H, W, C]`` in [0, 1]:
:func:`keras_cnn.training.evaluate.load_inputs` reads files the way ``keras-cnn predict`` does) and returns
NumPy arrays in a small dataclass, so a notebook can plot them; :mod:`keras_cnn.explain.pictures` draws them.

- Filters, feature maps, deconvnet, occlusion: Zeiler & Fergus, "Visualizing and Understanding Convolutional
  Networks", ECCV 2014, https://arxiv.org/abs/1311.2901 (figures 2, 7).
- Grad-CAM: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
  Localization", ICCV 2017, https://arxiv.org/abs/1610.02391 (equations 1-2).

Example:
    >>> import numpy as np, keras_cnn
    >>> from keras_cnn import explain
    >>> model = keras_cnn.build("resnet20", num_classes=10)
    >>> image = np.random.default_rng(0).random((32, 32, 3), dtype="float32")
    >>> explain.gradcam(model, image).heatmap.shape
    (32, 32)
    >>> explain.occlusion(model, image, size=8, stride=4).probability.shape
    (7, 7)
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from keras_cnn.explain import gradients, targets
from keras_cnn.training.logits import emitting_logits, softmax_output_layers


# --------------------------------------------------------------------------- results
@dataclasses.dataclass
class Filters:
    """A layer's filters: ``kernels`` ``(filters, kh, kw, channels)`` as stored, and ``grid``, each filter
    contrast-normalized to [0, 1] (ZFNet Fig. 6) and tiled, ``(rows*(kh+1)+1, cols*(kw+1)+1, 1 or 3)``."""

    layer: str
    kernels: np.ndarray
    grid: np.ndarray


@dataclasses.dataclass
class FeatureMaps:
    """The ``top`` strongest maps of ``layer`` for one image: ``maps`` ``(top, h, w)``, their ``channels`` and
    each one's mean activation (``strength``), strongest first, of the layer's ``total`` channels."""

    layer: str
    level: str | None
    maps: np.ndarray
    channels: np.ndarray
    strength: np.ndarray
    total: int


@dataclasses.dataclass
class Deconvnet:
    """ZFNet Fig. 2: for each of the ``top`` channels of ``layer`` with the strongest single activation, that
    activation alone (every other one of the layer set to zero) projected back to pixel space.
    ``projections`` ``(top, H, W, C)`` are in the input's units (signed); ``positions`` ``(top, 2)`` the
    activation's row and column in the map, ``activations`` its value, ``boxes`` ``(top, 4)`` the
    projection's support in the image (top, left, bottom, right; bottom/right exclusive)."""

    layer: str
    level: str | None
    projections: np.ndarray
    channels: np.ndarray
    positions: np.ndarray
    activations: np.ndarray
    boxes: np.ndarray


@dataclasses.dataclass
class Occlusion:
    """ZFNet Fig. 7: ``probability`` ``(rows, cols)`` of ``class_index`` with a ``fill``-grey square of ``size``
    pixels at each position (``stride`` apart; row ``i`` covers image rows ``i*stride .. i*stride+size``);
    ``heatmap`` ``(H, W)``, for each pixel the mean drop of that probability over the squares covering it,
    scaled to [0, 1] (1: where hiding the image costs the class the most). ``base_probability``: unoccluded."""

    class_index: int
    base_probability: float
    probability: np.ndarray
    heatmap: np.ndarray
    size: int
    stride: int


@dataclasses.dataclass
class GradCAM:
    """Grad-CAM of ``class_index`` on ``layer``: ``cam`` ``(h, w)`` = ReLU(sum_k alpha_k A^k), alpha_k the
    spatial mean of d(class score)/dA^k, the score taken before the softmax; ``heatmap`` ``(H, W)``, ``cam``
    resized bilinearly to the image and scaled to [0, 1] (all zeros when no location speaks for the class)."""

    layer: str
    level: str | None
    class_index: int
    probability: float
    cam: np.ndarray
    heatmap: np.ndarray


# --------------------------------------------------------------------------- helpers
def _batch(model, image) -> np.ndarray:
    """One image ``(H, W, C)`` (or a batch of one) as the model's float32 batch, checked against its input."""
    array = np.asarray(image, "float32")
    if array.ndim == 3:
        array = array[None]
    expected = tuple(model.input_shape[1:])
    if array.ndim != 4 or len(array) != 1 or any(e is not None and e != a for e, a in zip(expected, array.shape[1:])):
        raise ValueError(f"{model.name}: expected one image of shape {expected} (H, W, C floats in [0, 1]), received "
                         f"an array of shape {np.shape(image)}")
    return array


def predict_probabilities(model, images, batch_size=128) -> np.ndarray:
    """Class probabilities of the main output for ``images`` (float64 ``[N, classes]``), through the model's
    compiled predict step (traced once; an eager call of a deep net costs more than its arithmetic)."""
    index = targets.output_index(model)
    parts = []
    for start in range(0, len(images), batch_size):
        outputs = model.predict_on_batch(images[start:start + batch_size])
        if isinstance(outputs, dict):
            outputs = outputs[model.output_names[index]]
        elif isinstance(outputs, (list, tuple)):
            outputs = outputs[index]
        parts.append(keras.ops.convert_to_numpy(outputs).astype("float64"))
    return np.concatenate(parts)


def _scale(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 2-D map resized bilinearly (half-pixel centres) to ``(height, width)``."""
    if array.shape == (height, width):
        return array.astype("float32")
    resized = keras.ops.image.resize(array[None, :, :, None].astype("float32"), (height, width),
                                     interpolation="bilinear", antialias=False)
    return keras.ops.convert_to_numpy(resized)[0, :, :, 0]


def _resolve(model, layer, default=None):
    levels = targets.feature_levels(model)
    if layer is None:
        chosen = default(levels) if default else levels[-1]
        return chosen["layer"], chosen["level"]
    return targets.resolve_layer(model, layer, levels)


# --------------------------------------------------------------------------- the views
def filter_grid(kernels: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Kernels ``(kh, kw, channels, filters)`` tiled into one image: each filter scaled to [0, 1] on its own
    (ZFNet's contrast normalization), RGB for 3 input channels, else the mean over the input channels;
    a 1-pixel white border between filters."""
    kernels = np.asarray(kernels, "float32")
    if kernels.ndim != 4:
        raise ValueError(f"kernels must be (kh, kw, channels, filters), received shape {kernels.shape}")
    kh, kw, channels, count = kernels.shape
    tiles = np.moveaxis(kernels, 3, 0)
    tiles = tiles if channels == 3 else tiles.mean(axis=3, keepdims=True)
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.ones((rows * (kh + 1) + 1, columns * (kw + 1) + 1, tiles.shape[-1]), "float32")
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        top, left = 1 + row * (kh + 1), 1 + column * (kw + 1)
        grid[top:top + kh, left:left + kw] = _scale(tile)
    return grid


def filters(model, layer=None) -> Filters:
    """The filters of ``layer`` (default: the first convolution, ZFNet Fig. 6's layer 1) and their grid.

    Example:
        >>> import keras_cnn
        >>> from keras_cnn import explain
        >>> found = explain.filters(keras_cnn.build("alexnet_owt"))
        >>> found.layer, found.kernels.shape
        ('conv1', (64, 11, 11, 3))
    """
    if layer is None:
        chosen = targets.first_conv_layer(model)
    else:
        name = layer
        if name not in {lyr.name for lyr in model.layers}:
            name = targets.resolve_layer(model, layer)[0]
        chosen = model.get_layer(name)
        if targets.kernel_of(chosen) is None:
            convolutions = [lyr.name for lyr in model.layers if targets.kernel_of(lyr) is not None]
            more = " ..." if len(convolutions) > 6 else ""
            raise ValueError(f"{model.name}: layer {layer!r} ({type(chosen).__name__}) has no convolution kernel; "
                             f"layers with filters: {', '.join(convolutions[:6])}{more}")
    kernels = targets.kernel_of(chosen)
    return Filters(chosen.name, np.moveaxis(kernels, 3, 0), filter_grid(kernels))


def feature_maps(model, image, layer=None, top=16) -> FeatureMaps:
    """The ``top`` channels of ``layer`` (a level such as ``"P3"`` or a layer name; default the shallowest
    level) with the highest mean activation on ``image`` (``(H, W, C)`` in [0, 1])."""
    name, level = _resolve(model, layer, default=lambda levels: levels[0])
    maps = gradients.map_values(model, _batch(model, image), name)[0]
    strength = maps.mean(axis=(0, 1))
    order = np.argsort(-strength, kind="stable")[:max(1, int(top))]
    return FeatureMaps(name, level, np.moveaxis(maps[:, :, order], 2, 0), order, strength[order], maps.shape[-1])


def _support(projection: np.ndarray) -> tuple[int, int, int, int]:
    magnitude = np.abs(projection).sum(axis=-1)
    rows, columns = np.nonzero(magnitude > magnitude.max() * 1e-6) if magnitude.max() > 0 else ((), ())
    if len(rows) == 0:
        return 0, 0, projection.shape[0], projection.shape[1]
    return int(rows.min()), int(columns.min()), int(rows.max()) + 1, int(columns.max()) + 1


def deconvnet(model, image, layer=None, top=9) -> Deconvnet:
    """Zeiler & Fergus' deconvnet projections of ``layer``'s ``top`` strongest activations (one per channel:
    the channels whose maximum is highest, each at its maximum) on ``image``. TensorFlow or PyTorch backend.

    Example:
        >>> import numpy as np, keras_cnn
        >>> from keras_cnn import explain
        >>> model = keras_cnn.build("alexnet_owt")
        >>> image = np.random.default_rng(0).random((224, 224, 3), dtype="float32")
        >>> explain.deconvnet(model, image, layer="P2", top=4).projections.shape
        (4, 224, 224, 3)
    """
    name, level = _resolve(model, layer, default=lambda levels: levels[0])
    batch = _batch(model, image)
    maps = gradients.map_values(model, batch, name)[0]
    peaks = maps.reshape(-1, maps.shape[-1]).max(axis=0)
    channels = np.argsort(-peaks, kind="stable")[:max(1, int(top))]
    seeds = np.zeros((len(channels), *maps.shape), "float32")
    positions, values = [], []
    for i, channel in enumerate(channels):
        row, column = np.unravel_index(int(np.argmax(maps[:, :, channel])), maps.shape[:2])
        seeds[i, row, column, channel] = max(float(maps[row, column, channel]), 0.0)
        positions.append((row, column))
        values.append(float(maps[row, column, channel]))
    with gradients.deconvnet_rectification(model):
        _, projections = gradients.input_gradients(model, np.repeat(batch, len(channels), axis=0), name, seeds)
    boxes = np.array([_support(p) for p in projections], "int64")
    return Deconvnet(name, level, projections, channels, np.array(positions, "int64"), np.array(values, "float32"),
                     boxes)


def occlusion(model, image, class_index=None, *, size=None, stride=None, fill=0.5, batch_size=128) -> Occlusion:
    """ZFNet's occlusion sensitivity: the probability of ``class_index`` (default: the predicted class) as a
    grey square (``fill``, in the input's [0, 1] units) of ``size`` pixels (default 1/7 of the image) slides
    over ``image`` ``stride`` pixels at a time (default ``size // 2``). Forward passes only: every backend."""
    batch = _batch(model, image)
    height, width = batch.shape[1:3]
    size = int(size or max(1, round(min(height, width) / 7)))
    stride = int(stride or max(1, size // 2))
    if not 1 <= size <= min(height, width) or stride < 1:
        raise ValueError(f"occlusion: size must be 1..{min(height, width)} pixels and stride >= 1, received "
                         f"size={size}, stride={stride}")
    base = predict_probabilities(model, batch)[0]
    index = int(np.argmax(base)) if class_index is None else int(class_index)
    rows = list(range(0, height - size + 1, stride))
    columns = list(range(0, width - size + 1, stride))
    probability = np.zeros((len(rows), len(columns)), "float64")
    corners = [(r, c) for r in rows for c in columns]
    for start in range(0, len(corners), batch_size):
        chunk = corners[start:start + batch_size]
        occluded = np.repeat(batch, len(chunk), axis=0)
        for k, (r, c) in enumerate(chunk):
            occluded[k, r:r + size, c:c + size, :] = fill
        scores = predict_probabilities(model, occluded, batch_size)[:, index]
        for k, (r, c) in enumerate(chunk):
            probability[r // stride, c // stride] = scores[k]
    drop, cover = np.zeros((height, width)), np.zeros((height, width))
    for (r, c), p in zip(corners, probability.ravel()):
        drop[r:r + size, c:c + size] += base[index] - p
        cover[r:r + size, c:c + size] += 1
    heat = np.where(cover > 0, drop / np.maximum(cover, 1), drop[cover > 0].min() if cover.any() else 0.0)
    return Occlusion(index, float(base[index]), probability.astype("float32"), _scale(heat).astype("float32"), size,
                     stride)


def gradcam(model, image, class_index=None, layer=None) -> GradCAM:
    """Grad-CAM (Selvaraju et al. 2017) of ``class_index`` (default: the predicted class) over ``layer`` (a level
    such as ``"P4"`` or a layer name; default the deepest level whose map is at least 2x2, the last
    convolutional map). The class score is the logit (the softmax's input); ``probability`` is the softmax of
    the logits (the model's output where it has no softmax). One forward and backward pass; TensorFlow or
    PyTorch backend."""
    batch = _batch(model, image)
    name, level = _resolve(model, layer, default=targets.default_gradcam_layer)
    index = targets.output_index(model)
    switched = bool(softmax_output_layers(model))
    with emitting_logits(model):
        maps, grads, scores = gradients.map_gradients(model, batch, name, index,
                                                      None if class_index is None else [int(class_index)])
    scores = scores[0].astype("float64")
    chosen = int(np.argmax(scores)) if class_index is None else int(class_index)
    if switched:  # the softmax the output had, applied to the logits it gave here
        scores = np.exp(scores - scores.max())
        scores /= scores.sum()
    probability = float(scores[chosen])
    weights = grads[0].mean(axis=(0, 1))
    cam = np.maximum((maps[0] * weights).sum(axis=-1), 0.0)
    heatmap = _scale(_resize(cam, *batch.shape[1:3]))
    return GradCAM(name, level, chosen, probability, cam.astype("float32"), heatmap.astype("float32"))
