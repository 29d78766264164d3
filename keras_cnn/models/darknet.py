"""Darknet-19 (YOLO v2) and Darknet-53 (YOLO v3) classifiers.

- Redmon & Farhadi, "YOLO9000: Better, Faster, Stronger", CVPR 2017,
  https://arxiv.org/abs/1612.08242 (Table 6; pjreddie darknet19.cfg).
- Redmon & Farhadi, "YOLOv3: An Incremental Improvement", 2018, https://arxiv.org/abs/1804.02767
  (Table 1; timm darknet53 classifier head).

Every conv is conv (no bias) - BN - LeakyReLU(0.1).

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("darknet53", num_classes=10).output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import conv_bn_act, feature_pooling, pooled_head
from keras_cnn.models.spec import Variant, register_model


def darknet_conv(x, filters, kernel_size, strides=1, name=None):
    """Conv (no bias) - BN - LeakyReLU(0.1)."""
    x = conv_bn_act(x, filters, kernel_size, strides=strides, activation=None, name=name)
    return layers.LeakyReLU(negative_slope=0.1, name=f"{name}_act")(x)


#: darknet19.cfg: numbers are 3x3 convs (a "/" pair is 3x3 then 1x1 of half width), "M" max-pools.
DARKNET19 = (32, "M", 64, "M", 128, 64, 128, "M", 256, 128, 256, "M", 512, 256, 512, 256, 512, "M",
             1024, 512, 1024, 512, 1024)


@register_model(
    family="darknet",
    paper="YOLO9000: Better, Faster, Stronger",
    url="https://arxiv.org/abs/1612.08242", year=2017,
    variants=[Variant("darknet19", params=20_842_376, macs=2.79e9, accuracy="top-1 72.9 / top-5 91.2",
                      follows="paper Table 6 / pjreddie darknet19.cfg (1x1 conv classifier with bias)")],
)
def darknet19(*, inputs, num_classes, include_top, pooling, classifier_activation):
    """Darknet-19: 19 convs, 5 max-pools; 1x1 convs halve the width between 3x3 convs; the
    classifier is a 1x1 conv to the classes, then global average pooling."""
    x, previous, conv, pool = inputs, None, 1, 1
    for item in DARKNET19:
        if item == "M":
            x = layers.MaxPooling2D(2, 2, name=f"pool{pool}")(x)
            pool += 1
            continue
        kernel = 1 if previous is not None and item < previous else 3
        x = darknet_conv(x, item, kernel, name=f"conv{conv}")
        previous, conv = item, conv + 1
    if not include_top:
        return feature_pooling(x, pooling)
    x = layers.Conv2D(num_classes, 1, name="classifier_conv")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)


def darknet_residual(x, name):
    """1x1 to half width, 3x3 back, added to the input."""
    y = darknet_conv(x, x.shape[-1] // 2, 1, name=f"{name}_conv1")
    y = darknet_conv(y, x.shape[-1], 3, name=f"{name}_conv2")
    return layers.Add(name=f"{name}_add")([x, y])


@register_model(
    family="darknet",
    paper="YOLOv3: An Incremental Improvement",
    url="https://arxiv.org/abs/1804.02767", year=2018, input_shape=(256, 256, 3),
    variants=[Variant("darknet53", params=41_609_928, macs=7.13e9, accuracy="top-1 77.2 / top-5 93.8",
                      follows="paper Table 1 / timm darknet53 (global average pool, Dense classifier)",
                      notes="reference MACs at 224; default input 256 as in the paper")],
)
def darknet53(*, inputs, num_classes, include_top, pooling, classifier_activation, depths=(1, 2, 8, 8, 4)):
    """Darknet-53: a 3x3 stem and five stride-2 stages of residual blocks (1, 2, 8, 8, 4)."""
    x = darknet_conv(inputs, 32, 3, name="stem")
    for stage, depth in enumerate(depths, start=1):
        x = darknet_conv(x, 32 * 2**stage, 3, strides=2, name=f"stage{stage}_down")
        for i in range(depth):
            x = darknet_residual(x, name=f"stage{stage}_block{i + 1}")
    return pooled_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                       classifier_activation=classifier_activation)


