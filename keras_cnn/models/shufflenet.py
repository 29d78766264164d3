"""ShuffleNet v1 and v2.

- v1: Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile
  Devices", CVPR 2018, https://arxiv.org/abs/1707.01083 (Table 1; Megvii's reference code
  ShuffleNet-Series/ShuffleNetV1). The first pointwise conv of stage 2 is not grouped (its input
  has only 24 channels), as the paper says.
- v2: Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
  ECCV 2018, https://arxiv.org/abs/1807.11164 (Table 5; torchvision shufflenet_v2). The channel
  split keeps the first half and runs the second through the branch, and the shuffle has two
  groups, as torchvision's ``chunk(2)`` and ``channel_shuffle(x, 2)``; torchvision's checkpoints
  load through :data:`V2_TORCHVISION_KEYS`.

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("shufflenet_v2_x1_0", num_classes=10).output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import (
    batch_norm,
    check_choice,
    check_range,
    classifier_head,
    conv_bn_act,
    max_pool,
    symmetric_conv_dw,
)
from keras_cnn.layers.channel_shuffle import ChannelShuffle, ChannelSplit
from keras_cnn.models.mobilenet import RECIPE as MOBILE_RECIPE
from keras_cnn.models.spec import KeyMap, Variant, choice, register_model, torchvision_checkpoint

STAGE_REPEATS = (4, 8, 4)

# --------------------------------------------------------------------------- ShuffleNet v1
#: output channels of stages 2-4 at 1.0x for each group count (Table 1 of the paper).
V1_STAGE_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                     4: (272, 544, 1088), 8: (384, 768, 1536)}
V1_STEM_CHANNELS = {0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}
V1_PARAMS = {1: 1_531_936, 2: 1_733_848, 3: 1_865_728, 4: 1_968_344, 8: 2_434_768}
V1_MACS = {1: 148e6, 2: 148e6, 3: 145e6, 4: 143e6, 8: 151e6}


def shufflenet_v1_unit(x, *, out_channels, mid_channels, groups, strides, group_first_conv, name):
    """Grouped 1x1 -> shuffle -> depthwise 3x3 -> grouped 1x1; add (stride 1) or concat with a
    3x3/2 average pool (stride 2), then ReLU."""
    in_channels = x.shape[-1]
    branch_out = out_channels - in_channels if strides == 2 else out_channels
    first_groups = groups if group_first_conv else 1
    for what, channels, g in (("mid", mid_channels, first_groups), ("out", branch_out, groups)):
        if channels % g:
            raise ValueError(f"shufflenet_v1: {name} {what} channels {channels} are not divisible by groups={g}; "
                             "choose a scale that keeps every width a multiple of the group count")
    y = conv_bn_act(x, mid_channels, 1, groups=first_groups, name=f"{name}_gconv1")
    if groups > 1:
        y = ChannelShuffle(groups, name=f"{name}_shuffle")(y)
    y = symmetric_conv_dw(y, strides, name=f"{name}_dw")
    y = batch_norm(y, name=f"{name}_dw_bn")
    y = conv_bn_act(y, branch_out, 1, groups=groups, activation=None, name=f"{name}_gconv2")
    if strides == 2:
        shortcut = layers.ZeroPadding2D(1, name=f"{name}_pool_pad")(x)
        shortcut = layers.AveragePooling2D(3, 2, name=f"{name}_pool")(shortcut)
        y = layers.Concatenate(name=f"{name}_concat")([shortcut, layers.ReLU(name=f"{name}_relu")(y)])
        return y
    y = layers.Add(name=f"{name}_add")([x, y])
    return layers.ReLU(name=f"{name}_relu")(y)


@register_model(
    family="shufflenet_v1",
    paper="ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices",
    url="https://arxiv.org/abs/1707.01083", year=2018,
    follows="paper Table 1 / Megvii ShuffleNet-Series ShuffleNetV1",
    variants=[Variant(f"shufflenet_v1_g{g}", {"groups": g}, params=V1_PARAMS[g], macs=V1_MACS[g],
                      accuracy={3: "top-1 err 32.2 (paper)", 8: "top-1 err 32.0 (paper)"}.get(g, ""))
              for g in (1, 2, 3, 4, 8)],
    recipe=MOBILE_RECIPE,
    tuner_knobs={"scale": choice(0.5, 1.0)},
)
def shufflenet_v1(*, inputs, num_classes, include_top, pooling, classifier_activation, groups=3,
                  scale=1.0):
    """ShuffleNet v1 with ``groups`` in {1, 2, 3, 4, 8} and width ``scale`` in [0.25, 2.0].

    Stage widths are ``int(c * scale)`` of Table 1, rounded to a multiple of ``4 * groups`` so
    the bottleneck splits into the groups (a no-op at 0.5x/1.0x/1.5x/2.0x for g3 and g8).
    The stem has 24 channels at 1.0x and 1.5x,
    12 at 0.5x and 48 at 2.0x (Megvii's reference; 0.5x g3 then has 718,324 params), and
    ``int(24 * scale)`` rounded to an even number at other scales; it is then widened until the
    first unit's branch divides into the groups (Megvii's 0.5x g8 stem of 16).
    """
    check_choice(groups, tuple(V1_STAGE_CHANNELS), "groups", "shufflenet_v1")
    check_range(scale, 0.25, 2.0, "scale", "shufflenet_v1")
    stem = V1_STEM_CHANNELS.get(scale, 2 * max(1, int(12 * scale)))
    while (int(round(int(V1_STAGE_CHANNELS[groups][0] * scale) / (4 * groups))) * 4 * groups - stem) % groups:
        stem += 1  # the first unit's branch (stage width - stem) must split into the groups
    x = conv_bn_act(inputs, stem, 3, strides=2, name="stem")
    x = max_pool(x, 3, 2, padding=1, name="stem_pool")
    for stage, (repeats, channels) in enumerate(zip(STAGE_REPEATS, V1_STAGE_CHANNELS[groups]), start=2):
        unit = 4 * groups  # the bottleneck (width / 4) must split into the groups
        out_channels = max(unit, int(round(int(channels * scale) / unit)) * unit)
        for i in range(repeats):
            x = shufflenet_v1_unit(x, out_channels=out_channels, mid_channels=out_channels // 4, groups=groups,
                                   strides=2 if i == 0 else 1, group_first_conv=not (stage == 2 and i == 0),
                                   name=f"stage{stage}_unit{i + 1}")
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)


# --------------------------------------------------------------------------- ShuffleNet v2
#: channels of stages 2-4 and conv5 for each width (Table 5 of the paper).
V2_CHANNELS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024), 1.5: (176, 352, 704, 1024),
               2.0: (244, 488, 976, 2048)}


def shufflenet_v2_unit(x, *, out_channels, strides, name):
    """Channel split (stride 1) or two branches (stride 2), concat, channel shuffle of 2."""
    branch = out_channels // 2
    if strides == 1:
        left, right = ChannelSplit(name=f"{name}_split")(x)
    else:
        left = symmetric_conv_dw(x, 2, name=f"{name}_left_dw")
        left = batch_norm(left, name=f"{name}_left_dw_bn")
        left = conv_bn_act(left, branch, 1, name=f"{name}_left_pw")
        right = x
    right = conv_bn_act(right, branch, 1, name=f"{name}_right_pw1")
    right = symmetric_conv_dw(right, strides, name=f"{name}_right_dw")
    right = batch_norm(right, name=f"{name}_right_dw_bn")
    right = conv_bn_act(right, branch, 1, name=f"{name}_right_pw2")
    x = layers.Concatenate(name=f"{name}_concat")([left, right])
    return ChannelShuffle(2, name=f"{name}_shuffle")(x)


#: torchvision's ShuffleNetV2 checkpoints (``ShuffleNet_V2_X*_Weights``).
V2_TORCHVISION_CHECKPOINTS = {
    0.5: (torchvision_checkpoint("shufflenetv2_x0.5-f707e7126e.pth", top1=60.552),),
    1.0: (torchvision_checkpoint("shufflenetv2_x1-5666bf0f80.pth", top1=69.362),),
    1.5: (torchvision_checkpoint("shufflenetv2_x1_5-3c479a10.pth", resize_size=232, top1=72.996),),
    2.0: (torchvision_checkpoint("shufflenetv2_x2_0-8be3c8ee.pth", resize_size=232, top1=76.23),),
}
#: torchvision's ShuffleNetV2 (``torchvision.models.shufflenetv2``) onto our layer names: ``stage{s}.{i}``
#: is our unit i + 1; ``branch1`` (stride 2 only) is our left branch (dw conv, BN, 1x1 conv, BN at 0-3),
#: ``branch2`` our right one (1x1 conv, BN, ReLU, dw conv, BN, 1x1 conv, BN at 0-6).
V2_TORCHVISION_KEYS = KeyMap(
    rules=(
        (r"stem_conv", "conv1.0"),
        (r"stem_bn", "conv1.1"),
        (r"stage(\d)_unit(\d+)_left_dw", "stage{1}.{2-1}.branch1.0"),
        (r"stage(\d)_unit(\d+)_left_dw_bn", "stage{1}.{2-1}.branch1.1"),
        (r"stage(\d)_unit(\d+)_left_pw_conv", "stage{1}.{2-1}.branch1.2"),
        (r"stage(\d)_unit(\d+)_left_pw_bn", "stage{1}.{2-1}.branch1.3"),
        (r"stage(\d)_unit(\d+)_right_pw1_conv", "stage{1}.{2-1}.branch2.0"),
        (r"stage(\d)_unit(\d+)_right_pw1_bn", "stage{1}.{2-1}.branch2.1"),
        (r"stage(\d)_unit(\d+)_right_dw", "stage{1}.{2-1}.branch2.3"),
        (r"stage(\d)_unit(\d+)_right_dw_bn", "stage{1}.{2-1}.branch2.4"),
        (r"stage(\d)_unit(\d+)_right_pw2_conv", "stage{1}.{2-1}.branch2.5"),
        (r"stage(\d)_unit(\d+)_right_pw2_bn", "stage{1}.{2-1}.branch2.6"),
        (r"conv5_conv", "conv5.0"),
        (r"conv5_bn", "conv5.1"),
        (r"predictions", "fc"),
    ),
    head=("fc",),
)


@register_model(
    family="shufflenet_v2",
    paper="ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
    url="https://arxiv.org/abs/1807.11164", year=2018,
    follows="paper Table 5 / torchvision shufflenet_v2",
    variants=[
        Variant("shufflenet_v2_x0_5", {"width": 0.5}, params=1_366_792, macs=41e6, accuracy="top-1 60.55",
                checkpoints=V2_TORCHVISION_CHECKPOINTS[0.5]),
        Variant("shufflenet_v2_x1_0", {"width": 1.0}, params=2_278_604, macs=146e6, accuracy="top-1 69.36",
                checkpoints=V2_TORCHVISION_CHECKPOINTS[1.0]),
        Variant("shufflenet_v2_x1_5", {"width": 1.5}, params=3_503_624, macs=299e6, accuracy="top-1 73.00",
                checkpoints=V2_TORCHVISION_CHECKPOINTS[1.5]),
        Variant("shufflenet_v2_x2_0", {"width": 2.0}, params=7_393_996, macs=591e6, accuracy="top-1 76.23",
                checkpoints=V2_TORCHVISION_CHECKPOINTS[2.0]),
    ],
    recipe=MOBILE_RECIPE,
    key_maps={"torchvision": V2_TORCHVISION_KEYS},
)
def shufflenet_v2(*, inputs, num_classes, include_top, pooling, classifier_activation, width=1.0):
    """ShuffleNet v2 at width 0.5, 1.0, 1.5 or 2.0: channel split, concat, shuffle; conv5 1x1
    before pooling."""
    check_choice(width, tuple(V2_CHANNELS), "width", "shufflenet_v2")
    *stage_channels, last = V2_CHANNELS[width]
    x = conv_bn_act(inputs, 24, 3, strides=2, name="stem")
    x = max_pool(x, 3, 2, padding=1, name="stem_pool")
    for stage, (repeats, channels) in enumerate(zip(STAGE_REPEATS, stage_channels), start=2):
        for i in range(repeats):
            x = shufflenet_v2_unit(x, out_channels=channels, strides=2 if i == 0 else 1,
                                   name=f"stage{stage}_unit{i + 1}")
    x = conv_bn_act(x, last, 1, name="conv5")
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)
