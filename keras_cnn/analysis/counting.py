"""Measurements: trainable parameters and multiply-accumulates (MACs) of a built model.

MACs count one multiply-add per weight use in convolutions (plain, grouped, depthwise,
separable), dense layers and the custom layers that hold convolutions (squeeze-excite, RepVGG
blocks, LeNet's partial C3), at the model's input size; bias adds, BatchNorm, activations and
pooling are not counted (the convention of the reference tables).

Example:
    >>> import keras_cnn
    >>> from keras_cnn.analysis.counting import count_macs
    >>> round(count_macs(keras_cnn.build("resnet50")) / 1e9, 2)
    4.09
"""

from __future__ import annotations

import numpy as np

from keras_cnn.layers import PartialConv2D, RepVGGBlock, SqueezeExcite


def count_trainable(model) -> int:
    """Trainable parameter count (BatchNorm moving statistics excluded)."""
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


def _spatial(shape):
    return int(np.prod([d for d in shape[1:-1]]))


def layer_macs(layer, input_shape, output_shape, deployed=False) -> int:
    """MACs of one layer call with the given static shapes (``deployed``: a RepVGG block counts
    as the single 3x3 convolution it fuses into)."""
    import keras

    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        depthwise = _spatial(output_shape) * input_shape[-1] * layer.depth_multiplier * kh * kw
        return depthwise + _spatial(output_shape) * input_shape[-1] * layer.depth_multiplier * output_shape[-1]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _spatial(output_shape) * output_shape[-1] * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        return _spatial(output_shape) * output_shape[-1] * kh * kw * input_shape[-1] // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(output_shape[1:-1] or [1])) * input_shape[-1] * output_shape[-1]
    if isinstance(layer, SqueezeExcite):
        squeeze = layer.reduce.filters
        return 2 * input_shape[-1] * squeeze
    if isinstance(layer, RepVGGBlock):
        per_pixel = _spatial(output_shape) * output_shape[-1] * input_shape[-1] // layer.groups
        return per_pixel * (9 if layer.deploy or deployed else 10)  # 3x3 (+ the 1x1 branch at train time)
    if isinstance(layer, PartialConv2D):
        connections = sum(len(row) for row in layer.connection_table)
        return _spatial(output_shape) * connections * layer.kernel_size**2
    return 0


def count_macs(model, deployed=False) -> int:
    """Multiply-accumulates of one forward pass of ``model`` at its input size (``deployed``:
    count RepVGG blocks as fused, as :func:`keras_cnn.reparameterize` would make them)."""
    total = 0
    for layer in model.layers:
        for node in layer._inbound_nodes:
            inputs = [t for t in node.input_tensors]
            outputs = node.output_tensors
            if not inputs or not outputs:
                continue
            total += layer_macs(layer, tuple(inputs[0].shape), tuple(outputs[0].shape), deployed)
    return int(total)
