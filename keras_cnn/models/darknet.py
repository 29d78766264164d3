"""Darknet-19 (YOLO v2) and Darknet-53 (YOLO v3) classifiers.

- Redmon & Farhadi, "YOLO9000: Better, Faster, Stronger", CVPR 2017,
  https://arxiv.org/abs/1612.08242 (Table 6; pjreddie darknet19.cfg).
- Redmon & Farhadi, "YOLOv3: An Incremental Improvement", 2018, https://arxiv.org/abs/1804.02767
  (Table 1; timm darknet53 classifier head).

Every conv is conv (no bias) - BN - LeakyReLU(0.1), the papers' slope; timm's Darknet-53
checkpoint was trained with PyTorch's default 0.01 (``leaky_slope=0.01``, which its checkpoint row sets).

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("darknet53", num_classes=10).output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import check_range, classifier_head, conv_bn_act
from keras_cnn.models.spec import KeyMap, Variant, register_model, timm_checkpoint

#: Darknet's activation: LeakyReLU with slope 0.1 (layers ``{name}_act`` of :func:`conv_bn_act`).
ACTIVATION = ("leaky_relu", 0.1)


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
        x = conv_bn_act(x, item, kernel, activation=ACTIVATION, name=f"conv{conv}")
        previous, conv = item, conv + 1

    def conv_classifier(y):  # a 1x1 conv (with bias) to the classes, averaged over the map
        y = layers.Conv2D(num_classes, 1, name="classifier_conv")(y)
        return layers.GlobalAveragePooling2D(name="avg_pool")(y)

    return classifier_head(x, include_top, pooling, num_classes, classifier_activation, pool=None,
                           logits=conv_classifier)


def darknet_residual(x, *, bottle_ratio=0.5, groups=1, activation=ACTIVATION, name):
    """Darknet residual block (timm ``DarkBlock``): a 1x1 conv to ``bottle_ratio`` of the
    channels, a 3x3 conv (``groups``) back to the input's channels, added to the input; no
    activation after the add. Darknet-53 (ratio 0.5) and CSPDarknet-53's stages (cspnet.py)."""
    channels = x.shape[-1]
    y = conv_bn_act(x, int(round(channels * bottle_ratio)), 1, activation=activation, name=f"{name}_conv1")
    y = conv_bn_act(y, channels, 3, groups=groups, activation=activation, name=f"{name}_conv2")
    return layers.Add(name=f"{name}_add")([x, y])


#: timm's darknet53 checkpoint (``timm.models.get_pretrained_cfg``), trained with LeakyReLU(0.01).
DARKNET53_CHECKPOINTS = (
    timm_checkpoint("darknet53.c2ns_in1k", crop_size=256, crop_pct=0.887, interpolation="bicubic",
                    options={"leaky_slope": 0.01}),
)
#: timm's ``cspnet.py`` ``darknet53`` state_dict (``stem.conv1``, ``stages.N`` of ``DarkStage``) onto our layer names.
DARKNET53_TIMM_KEYS = KeyMap(
    rules=(
        (r"stem_(conv|bn)", "stem.conv1.{1}"),
        (r"stage(\d+)_down_(conv|bn)", "stages.{1-1}.conv_down.{2}"),
        (r"stage(\d+)_block(\d+)_conv(\d)_(conv|bn)", "stages.{1-1}.blocks.{2-1}.conv{3}.{4}"),
        (r"predictions", "head.fc"),
    ),
    head=("head.fc",),
)


@register_model(
    family="darknet",
    paper="YOLOv3: An Incremental Improvement",
    url="https://arxiv.org/abs/1804.02767", year=2018, input_shape=(256, 256, 3),
    variants=[Variant("darknet53", params=41_609_928, macs=7.13e9, accuracy="top-1 77.2 / top-5 93.8",
                      follows="paper Table 1 / timm darknet53 (global average pool, Dense classifier)",
                      notes="reference MACs at 224; default input 256 as in the paper",
                      checkpoints=DARKNET53_CHECKPOINTS)],
    key_maps={"timm": DARKNET53_TIMM_KEYS},
)
def darknet53(*, inputs, num_classes, include_top, pooling, classifier_activation, depths=(1, 2, 8, 8, 4),
              leaky_slope=0.1):
    """Darknet-53: a 3x3 stem and five stride-2 stages of residual blocks (1, 2, 8, 8, 4).

    Args:
        depths: residual blocks per stage.
        leaky_slope: negative slope of every LeakyReLU: 0.1 in the paper (darknet's cfg), 0.01 in
            timm's checkpoint (PyTorch's default).
    """
    check_range(leaky_slope, 0.0, 1.0, "leaky_slope", "darknet53")
    activation = ("leaky_relu", leaky_slope)
    x = conv_bn_act(inputs, 32, 3, activation=activation, name="stem")
    for stage, depth in enumerate(depths, start=1):
        x = conv_bn_act(x, 32 * 2**stage, 3, strides=2, activation=activation, name=f"stage{stage}_down")
        for i in range(depth):
            x = darknet_residual(x, activation=activation, name=f"stage{stage}_block{i + 1}")
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)


