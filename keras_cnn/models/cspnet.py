"""CSPNet: cross-stage-partial versions of ResNet-50, ResNeXt-50 and Darknet-53.

Wang et al., "CSPNet: A New Backbone that can Enhance Learning Capability of CNN", CVPRW 2020,
https://arxiv.org/abs/1911.11929 (seed 000 section 22). Follows timm's ``cspnet.py``
(``cspresnet50``, ``cspresnext50``, ``cspdarknet53``), whose ImageNet weights people use: each
stage downsamples (3x3/2), expands with a 1x1, splits the channels in two, runs the residual
blocks on one half only, and fuses both halves with 1x1 transitions.

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("cspdarknet53", num_classes=10).output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import check_choice, classifier_head, conv_bn_act, max_pool
from keras_cnn.layers.channel_shuffle import ChannelSplit
from keras_cnn.models.darknet import darknet_residual
from keras_cnn.models.resnet import bottleneck_block
from keras_cnn.models.spec import FeatureLevels, KeyMap, Variant, register_model, timm_checkpoint

#: timm's ConvNormAct with leaky_relu: LeakyReLU with slope 0.01 (layers ``{name}_act``).
ACTIVATION = ("leaky_relu", 0.01)


def csp_bottleneck(x, *, bottle_ratio, groups, activation=ACTIVATION, name):
    """ResNet bottleneck of the CSP stage (timm ``BottleneckBlock``): resnet.py's
    :func:`bottleneck_block` at stride 1 with the input's channels (identity shortcut), width
    ``bottle_ratio`` of them, and leaky ReLU after the convs and after the add."""
    channels = x.shape[-1]
    return bottleneck_block(x, channels, 1, groups=groups, width=int(round(channels * bottle_ratio)),
                            activation=activation, out_activation=activation, name=name)


#: The residual blocks a CSP stage runs on its half of the channels.
BLOCK_TYPES = {"bottleneck": csp_bottleneck, "dark": darknet_residual}


def csp_stage(x, out_channels, *, strides, depth, expand_ratio, bottle_ratio, block_ratio, groups, down_growth,
              cross_linear, block_type, name):
    """One cross-stage-partial stage (timm ``CrossStage``)."""
    if strides != 1:
        down = out_channels if down_growth else x.shape[-1]
        x = conv_bn_act(x, down, 3, strides=strides, groups=groups, activation=ACTIVATION, name=f"{name}_down")
    expanded = int(round(out_channels * expand_ratio))
    block_out = int(round(out_channels * block_ratio))
    x = conv_bn_act(x, expanded, 1, activation=None if cross_linear else ACTIVATION, name=f"{name}_expand")
    cross, blocks = ChannelSplit(name=f"{name}_split")(x)
    if block_out != blocks.shape[-1]:
        raise ValueError(f"cspnet: {name} blocks take {blocks.shape[-1]} channels but produce {block_out}")
    for i in range(depth):
        blocks = BLOCK_TYPES[block_type](blocks, bottle_ratio=bottle_ratio, groups=groups, activation=ACTIVATION,
                                         name=f"{name}_block{i + 1}")
    blocks = conv_bn_act(blocks, expanded // 2, 1, activation=ACTIVATION, name=f"{name}_transition_b")
    x = layers.Concatenate(name=f"{name}_concat")([cross, blocks])
    return conv_bn_act(x, out_channels, 1, activation=ACTIVATION, name=f"{name}_transition")


def _per_stage(value, stages):
    value = value if isinstance(value, (tuple, list)) else (value,)
    return tuple(value) + (value[-1],) * (stages - len(value))


CSP_VARIANTS = {
    "cspresnet50": dict(stem=(64, 7, "max"), depths=(3, 3, 5, 2), widths=(128, 256, 512, 1024), strides=(1, 2),
                        expand_ratio=2.0, bottle_ratio=0.5, block_ratio=1.0, cross_linear=True),
    "cspresnext50": dict(stem=(64, 7, "max"), depths=(3, 3, 5, 2), widths=(256, 512, 1024, 2048), strides=(1, 2),
                         groups=32, expand_ratio=1.0, bottle_ratio=1.0, block_ratio=0.5, cross_linear=True),
    "cspdarknet53": dict(stem=(32, 3, None), depths=(1, 2, 8, 8, 4), widths=(64, 128, 256, 512, 1024), strides=2,
                         expand_ratio=(2.0, 1.0), bottle_ratio=(0.5, 1.0), block_ratio=(1.0, 0.5), down_growth=True,
                         block_type="dark"),
}
CSP_REFERENCE = {"cspresnet50": (21.62e6, 4.54e9, "79.6"), "cspresnext50": (20.57e6, 4.05e9, "80.5"),
                 "cspdarknet53": (27.64e6, 6.57e9, "80.1")}

#: timm's checkpoints (``timm.models.get_pretrained_cfg``): trained and evaluated at 256, crop 0.887.
TIMM_CHECKPOINTS = {
    name: (timm_checkpoint(f"{name}.ra_in1k", crop_size=256, crop_pct=0.887, interpolation="bilinear"),)
    for name in CSP_VARIANTS
}
#: timm's ``cspnet.py`` state_dict (``CspNet``: ``stem.conv1``, ``stages.N`` of ``CrossStage``) onto our layer names.
TIMM_KEYS = KeyMap(
    rules=(
        (r"stem_(conv|bn)", "stem.conv1.{1}"),
        (r"stage(\d+)_down_(conv|bn)", "stages.{1-1}.conv_down.{2}"),
        (r"stage(\d+)_expand_(conv|bn)", "stages.{1-1}.conv_exp.{2}"),
        (r"stage(\d+)_block(\d+)_conv(\d)_(conv|bn)", "stages.{1-1}.blocks.{2-1}.conv{3}.{4}"),
        (r"stage(\d+)_transition_b_(conv|bn)", "stages.{1-1}.conv_transition_b.{2}"),
        (r"stage(\d+)_transition_(conv|bn)", "stages.{1-1}.conv_transition.{2}"),
        (r"predictions", "head.fc"),
    ),
    head=("head.fc",),
)


@register_model(
    family="cspnet",
    paper="CSPNet: A New Backbone that can Enhance Learning Capability of CNN",
    url="https://arxiv.org/abs/1911.11929", year=2020, input_shape=(256, 256, 3),
    follows="timm cspnet.py (CrossStage; leaky ReLU 0.01)",
    variants=[Variant(name, config, params=int(ref[0]), params_tolerance=0.005, macs=ref[1],
                      accuracy=f"top-1 {ref[2]} (timm)",
                      notes="the reference (timm's model card) gives millions; the exact count is in docs/MODELS.md",
                      checkpoints=TIMM_CHECKPOINTS[name])
              for name, config in CSP_VARIANTS.items() for ref in [CSP_REFERENCE[name]]],
    key_maps={"timm": TIMM_KEYS},
    features=FeatureLevels(candidates=r"stem_act|stage\d+_transition_act",
                           follows="timm feature_info (cspresnet50, cspdarknet53): the stem conv (before its pool), "
                                   "each stage's transition"),
)
def cspnet(*, inputs, num_classes, include_top, pooling, classifier_activation, stem=(64, 7, "max"),
           depths=(3, 3, 5, 2), widths=(128, 256, 512, 1024), strides=(1, 2), groups=1, expand_ratio=1.0,
           bottle_ratio=1.0, block_ratio=1.0, down_growth=False, cross_linear=False, block_type="bottleneck"):
    """A CSP network: stem, then one :func:`csp_stage` per entry of ``depths``.

    Per-stage arguments (``strides``, ``expand_ratio``, ``bottle_ratio``, ``block_ratio``) take a
    value or a tuple whose last value repeats (timm's convention).
    """
    check_choice(block_type, tuple(BLOCK_TYPES), "block_type", "cspnet")
    if len(depths) != len(widths):
        raise ValueError(f"cspnet: depths {depths} and widths {widths} must have one entry per stage")
    stem_channels, stem_kernel, stem_pool = stem
    stride = 2 if stem_pool else 1
    x = conv_bn_act(inputs, stem_channels, stem_kernel, strides=stride, activation=ACTIVATION, name="stem")
    if stem_pool:  # timm's MaxPool2d pads with -inf: the leaky ReLU before it can be negative
        x = max_pool(x, 3, 2, padding=1, pad_value=float("-inf"), name="stem_pool")
    n = len(depths)
    per_stage = zip(depths, widths, _per_stage(strides, n), _per_stage(expand_ratio, n), _per_stage(bottle_ratio, n),
                    _per_stage(block_ratio, n))
    for stage, (depth, width, s, er, br, blr) in enumerate(per_stage, start=1):
        x = csp_stage(x, width, strides=s, depth=depth, expand_ratio=er, bottle_ratio=br, block_ratio=blr,
                      groups=groups, down_growth=down_growth, cross_linear=cross_linear, block_type=block_type,
                      name=f"stage{stage}")
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)
