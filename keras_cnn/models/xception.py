"""Xception: depthwise-separable convolutions with residual connections.

Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017,
https://arxiv.org/abs/1610.02357 (Figure 5; keras.applications.Xception, the reference whose
weights people use, including its TensorFlow "same" padding and BN epsilon 1e-3).

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("xception", num_classes=10).output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import batch_norm, classifier_head
from keras_cnn.models.spec import Variant, choice, register_model

EPS = 1e-3


def separable_bn(x, filters, name, relu_first=True):
    """(ReLU) - SeparableConv 3x3 (no bias) - BN."""
    if relu_first:
        x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv")(x)
    return batch_norm(x, name=f"{name}_bn", epsilon=EPS)


def downsampling_block(x, filters, name, relu_first=True):
    """Two separable convs and a 3x3/2 max-pool, plus a strided 1x1 projection shortcut."""
    first, second = filters if isinstance(filters, tuple) else (filters, filters)
    residual = layers.Conv2D(second, 1, strides=2, padding="same", use_bias=False, name=f"{name}_proj")(x)
    residual = batch_norm(residual, name=f"{name}_proj_bn", epsilon=EPS)
    x = separable_bn(x, first, f"{name}_sep1", relu_first=relu_first)
    x = separable_bn(x, second, f"{name}_sep2")
    x = layers.MaxPooling2D(3, 2, padding="same", name=f"{name}_pool")(x)
    return layers.Add(name=f"{name}_add")([x, residual])


@register_model(
    family="xception", paper="Xception: Deep Learning with Depthwise Separable Convolutions",
    url="https://arxiv.org/abs/1610.02357", year=2017, input_shape=(299, 299, 3), min_input_size=71,
    variants=[Variant("xception", params=22_855_952, macs=8.40e9, accuracy="top-1 79.0 / top-5 94.5",
                      follows="paper Figure 5 / keras.applications.Xception",
                      keras_applications=("Xception", {}))],
    tuner_knobs={"middle_blocks": choice(4, 8)},
)
def xception(*, inputs, num_classes, include_top, pooling, classifier_activation, middle_blocks=8):
    """Xception: entry flow, ``middle_blocks`` (8) residual middle-flow blocks, exit flow."""
    if not isinstance(middle_blocks, int) or middle_blocks < 0:
        raise ValueError(f"xception: middle_blocks must be a non-negative integer, received {middle_blocks!r}")
    x = layers.Conv2D(32, 3, strides=2, use_bias=False, name="entry_conv1")(inputs)
    x = layers.ReLU(name="entry_conv1_relu")(batch_norm(x, name="entry_conv1_bn", epsilon=EPS))
    x = layers.Conv2D(64, 3, use_bias=False, name="entry_conv2")(x)
    x = layers.ReLU(name="entry_conv2_relu")(batch_norm(x, name="entry_conv2_bn", epsilon=EPS))
    x = downsampling_block(x, 128, "entry_block1", relu_first=False)
    x = downsampling_block(x, 256, "entry_block2")
    x = downsampling_block(x, 728, "entry_block3")
    for i in range(middle_blocks):
        y = x
        for j in range(3):
            y = separable_bn(y, 728, f"middle{i + 1}_sep{j + 1}")
        x = layers.Add(name=f"middle{i + 1}_add")([x, y])
    x = downsampling_block(x, (728, 1024), "exit_block")
    x = separable_bn(x, 1536, "exit_sep1", relu_first=False)
    x = layers.ReLU(name="exit_sep1_out")(x)
    x = separable_bn(x, 2048, "exit_sep2", relu_first=False)
    x = layers.ReLU(name="exit_sep2_out")(x)
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)
