"""ResNet v1 / v1.5, pre-activation ResNet v2, the CIFAR ResNets, ResNeXt and SE-ResNet(X)t.

- He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
  https://arxiv.org/abs/1512.03385 (Table 1; CIFAR nets section 4.2). ImageNet variants follow
  torchvision (v1.5: the stride sits in the 3x3 conv; ``stride_in_1x1=True`` is the paper's).
- He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016,
  https://arxiv.org/abs/1603.05027 (pre-activation; timm ``resnetv2`` layout).
- Xie et al., "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017,
  https://arxiv.org/abs/1611.05431 (grouped 3x3 convs; torchvision resnext).
- Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018, https://arxiv.org/abs/1709.01507
  (SE with reduction 16 in every block; Cadene's pretrained-models se_resnet50).

The blocks here are basic, bottleneck and pre-activation; the CSP nets (cspnet.py) run
:func:`bottleneck_block` with leaky ReLU in their stages.

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("resnet20").output_shape           # CIFAR-10 net, 32x32x3 input
    (None, 10)
    >>> keras_cnn.build("resnext50_32x4d", num_classes=10).output_shape
    (None, 10)
"""

import dataclasses
from typing import NamedTuple

from keras import layers

from keras_cnn.blocks import (
    apply_activation,
    batch_norm,
    check_choice,
    check_range,
    classifier_head,
    conv_bn_act,
    max_pool,
    symmetric_conv,
)
from keras_cnn.layers.drop_path import DropPath
from keras_cnn.layers.squeeze_excite import SqueezeExcite
from keras_cnn.layers.zero_pad_shortcut import ZeroPadShortcut
from keras_cnn.models.spec import (
    DROP_PATH,
    Checkpoint,
    FeatureLevels,
    KeyMap,
    Variant,
    choice,
    register_model,
    timm_checkpoint,
    torchvision_checkpoint,
)

SHORTCUTS = ("A", "B", "C")
#: The ImageNet stem's 3x3/2 max-pool: torchvision's (padding 1) or Caffe's (no padding, ceil mode).
STEM_POOLS = {"padded": dict(padding=1), "ceil": dict(padding=0, ceil_mode=True)}


def shortcut(x, filters, strides, kind, name, *, preact=None):
    """Residual shortcut: identity, option A (zero pad), or a 1x1 projection (B: when the shape
    changes, C: always). ``preact`` is the pre-activated input projections read in ResNet v2."""
    changes = strides != 1 or x.shape[-1] != filters
    if kind == "C" or (kind == "B" and changes):
        if preact is not None:  # ResNet v2: the projection reads the activated input and has no BN
            return symmetric_conv(preact, filters, 1, strides=strides, use_bias=False, name=f"{name}_proj_conv")
        return conv_bn_act(x, filters, 1, strides=strides, activation=None, name=f"{name}_proj")
    if changes:
        return ZeroPadShortcut(filters, strides, name=f"{name}_zero_pad")(x)
    return x


def _finish_residual(x, y, *, se_ratio, drop_path, name):
    if se_ratio:
        y = SqueezeExcite(ratio=se_ratio, name=f"{name}_se")(y)
    if drop_path:
        y = DropPath(drop_path, name=f"{name}_drop_path")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def basic_block(x, filters, strides, *, shortcut_kind="B", se_ratio=0.0, drop_path=0.0,
                zero_init_residual=False, name):
    """Two 3x3 conv-BN, ReLU between and after the residual add (ResNet-18/34, CIFAR nets)."""
    identity = shortcut(x, filters, strides, shortcut_kind, name)
    y = conv_bn_act(x, filters, 3, strides=strides, name=f"{name}_conv1")
    y = conv_bn_act(y, filters, 3, activation=None, bn_gamma_initializer="zeros" if zero_init_residual else "ones",
                    name=f"{name}_conv2")
    y = _finish_residual(identity, y, se_ratio=se_ratio, drop_path=drop_path, name=name)
    return layers.ReLU(name=f"{name}_out")(y)


def bottleneck_block(x, filters, strides, *, groups=1, width=None, shortcut_kind="B", stride_in_1x1=False,
                     se_ratio=0.0, drop_path=0.0, zero_init_residual=False, activation="relu",
                     out_activation=layers.ReLU, name):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand to ``filters``; ReLU after the add.

    ``activation`` follows the first two convs (``{name}_conv1_act``, ``{name}_conv2_act``),
    ``out_activation`` the add (``{name}_out``); either is anything
    :func:`~keras_cnn.blocks.activation_layer` takes (the CSP nets pass leaky ReLU for both).
    """
    width = width or filters // 4
    s1, s3 = (strides, 1) if stride_in_1x1 else (1, strides)
    identity = shortcut(x, filters, strides, shortcut_kind, name)
    y = conv_bn_act(x, width, 1, strides=s1, activation=activation, name=f"{name}_conv1")
    y = conv_bn_act(y, width, 3, strides=s3, groups=groups, activation=activation, name=f"{name}_conv2")
    y = conv_bn_act(y, filters, 1, activation=None, bn_gamma_initializer="zeros" if zero_init_residual else "ones",
                    name=f"{name}_conv3")
    y = _finish_residual(identity, y, se_ratio=se_ratio, drop_path=drop_path, name=name)
    return apply_activation(y, out_activation, name=f"{name}_out")


def preact_bottleneck_block(x, filters, strides, *, drop_path=0.0, name, **_):
    """Pre-activation bottleneck (ResNet v2): BN-ReLU first, projection from the activated input."""
    preact = layers.ReLU(name=f"{name}_preact_relu")(batch_norm(x, name=f"{name}_preact_bn"))
    identity = shortcut(x, filters, strides, "B", name, preact=preact)
    width = filters // 4
    y = conv_bn_act(preact, width, 1, name=f"{name}_conv1")
    y = conv_bn_act(y, width, 3, strides=strides, name=f"{name}_conv2")
    y = symmetric_conv(y, filters, 1, use_bias=False, name=f"{name}_conv3_conv")
    if drop_path:
        y = DropPath(drop_path, name=f"{name}_drop_path")(y)
    return layers.Add(name=f"{name}_add")([identity, y])


BLOCKS = {"basic": (basic_block, 1), "bottleneck": (bottleneck_block, 4), "preact": (preact_bottleneck_block, 4)}


def residual_stages(x, *, block, depths, widths, first_stride=1, groups=1, width_per_group=64,
                    shortcut_kind="B", stride_in_1x1=False, se_ratio=0.0, drop_path_rate=0.0,
                    zero_init_residual=False):
    """Stack the residual stages; stage ``i`` has ``depths[i]`` blocks of base width ``widths[i]``."""
    block_fn, expansion = BLOCKS[block]
    total, index = sum(depths), 0
    for stage, (depth, base) in enumerate(zip(depths, widths), start=1):
        for i in range(depth):
            strides = (first_stride if stage == 1 else 2) if i == 0 else 1
            kwargs = dict(shortcut_kind=shortcut_kind, se_ratio=se_ratio, zero_init_residual=zero_init_residual,
                          drop_path=drop_path_rate * index / max(1, total - 1))
            if block == "bottleneck":
                kwargs.update(groups=groups, width=int(base * width_per_group / 64) * groups,
                              stride_in_1x1=stride_in_1x1)
            x = block_fn(x, base * expansion, strides, name=f"stage{stage}_block{i + 1}", **kwargs)
            index += 1
    return x


class ResNetRow(NamedTuple):
    """One registered ResNet: its :func:`resnet` (or :func:`resnet_cifar`) options and reference numbers."""

    config: dict  # builder options, exactly the Variant's config
    params: int  # reference trainable parameters
    macs: float | None = None  # reference multiply-adds at the default input
    accuracy: str = ""  # reference accuracy, as the Variant states it


IMAGENET_RESNETS = {
    "resnet18": ResNetRow(config=dict(block="basic", depths=(2, 2, 2, 2)),
                          params=11_689_512, macs=1.81e9, accuracy="top-1 69.76"),
    "resnet34": ResNetRow(config=dict(block="basic", depths=(3, 4, 6, 3)),
                          params=21_797_672, macs=3.66e9, accuracy="top-1 73.31"),
    "resnet50": ResNetRow(config=dict(block="bottleneck", depths=(3, 4, 6, 3)),
                          params=25_557_032, macs=4.09e9, accuracy="top-1 76.13"),
    "resnet101": ResNetRow(config=dict(block="bottleneck", depths=(3, 4, 23, 3)),
                           params=44_549_160, macs=7.80e9, accuracy="top-1 77.37"),
    "resnet152": ResNetRow(config=dict(block="bottleneck", depths=(3, 8, 36, 3)),
                           params=60_192_808, macs=11.51e9, accuracy="top-1 78.31"),
    "resnext50_32x4d": ResNetRow(config=dict(block="bottleneck", depths=(3, 4, 6, 3), groups=32, width_per_group=4),
                                 params=25_028_904, macs=4.23e9, accuracy="top-1 77.62"),
    "resnext101_32x8d": ResNetRow(config=dict(block="bottleneck", depths=(3, 4, 23, 3), groups=32, width_per_group=8),
                                  params=88_791_336, macs=16.41e9, accuracy="top-1 79.31"),
    "resnext101_64x4d": ResNetRow(config=dict(block="bottleneck", depths=(3, 4, 23, 3), groups=64, width_per_group=4),
                                  params=83_455_272, macs=15.46e9, accuracy="top-1 83.25"),
}
#: SE-ResNet(X)t as Cadene's pretrained-models (and timm's ``legacy_se*``) build them: Caffe's stem
#: pool (3x3/2, unpadded, ceil mode). Registered apart from the torchvision nets for their own key map.
SE_RESNETS = {
    "se_resnet50": ResNetRow(
        config=dict(block="bottleneck", depths=(3, 4, 6, 3), se_ratio=1 / 16, stride_in_1x1=True, stem_pool="ceil"),
        params=28_088_024, macs=3.88e9, accuracy="top-1 77.65"),
    "se_resnext50_32x4d": ResNetRow(
        config=dict(block="bottleneck", depths=(3, 4, 6, 3), se_ratio=1 / 16, groups=32, width_per_group=4,
                    stem_pool="ceil"),
        params=27_559_896, macs=4.25e9, accuracy="top-1 79.08 (Cadene)"),
}
PAPER_SOURCES = {
    "resnext": "torchvision resnext (paper Table 1)",
    "se_resnet": "Cadene pretrained-models senet (SE reduction 16; Caffe layout: stride in the first 1x1, "
                 "stem pool 3x3/2 unpadded, ceil mode)",
    "se_": "Cadene pretrained-models senet (SE reduction 16; stem pool 3x3/2 unpadded, ceil mode)",
}
NOTES = {
    "se_resnext50_32x4d": "se_resnext50_32x4d: 27,559,896 is the count of Cadene's se_resnext50_32x4d, "
                          "derived from its definition (the paper gives no number)",
}
#: keras.applications twins (class name, our options matching its layout): its ResNet50/101/152 are
#: the original v1, stride in the first 1x1 conv.
KERAS_APPLICATIONS = {
    "resnet50": ("ResNet50", {"stride_in_1x1": True}),
    "resnet101": ("ResNet101", {"stride_in_1x1": True}),
    "resnet152": ("ResNet152", {"stride_in_1x1": True}),
}


#: torchvision's published weights (``torchvision.models.<name>``'s weights enum, its DEFAULT first).
TORCHVISION_CHECKPOINTS = {
    "resnet18": (torchvision_checkpoint("resnet18-f37072fd.pth", top1=69.758),),
    "resnet34": (torchvision_checkpoint("resnet34-b627a593.pth", top1=73.314),),
    "resnet50": (
        torchvision_checkpoint("resnet50-11ad3fa6.pth", "IMAGENET1K_V2", resize_size=232, top1=80.858),
        torchvision_checkpoint("resnet50-0676ba61.pth", top1=76.13),
    ),
    "resnet101": (
        torchvision_checkpoint("resnet101-cd907fc2.pth", "IMAGENET1K_V2", resize_size=232, top1=81.886),
        torchvision_checkpoint("resnet101-63fe2227.pth", top1=77.374),
    ),
    "resnet152": (
        torchvision_checkpoint("resnet152-f82ba261.pth", "IMAGENET1K_V2", resize_size=232, top1=82.284),
        torchvision_checkpoint("resnet152-394f9c45.pth", top1=78.312),
    ),
    "resnext50_32x4d": (
        torchvision_checkpoint("resnext50_32x4d-1a0047aa.pth", "IMAGENET1K_V2", resize_size=232, top1=81.198),
        torchvision_checkpoint("resnext50_32x4d-7cdf4587.pth", top1=77.618),
    ),
    "resnext101_32x8d": (
        torchvision_checkpoint("resnext101_32x8d-110c445d.pth", "IMAGENET1K_V2", resize_size=232, top1=82.834),
        torchvision_checkpoint("resnext101_32x8d-8ba56ff5.pth", top1=79.312),
    ),
    "resnext101_64x4d": (torchvision_checkpoint("resnext101_64x4d-173b62eb.pth", resize_size=232, top1=83.246),),
}
#: torchvision's ResNet / ResNeXt state_dict (``torchvision.models.resnet``) onto our layer names.
TORCHVISION_KEYS = KeyMap(
    rules=(
        (r"stem_conv", "conv1"),
        (r"stem_bn", "bn1"),
        (r"stage(\d+)_block(\d+)_conv(\d)_(conv|bn)", "layer{1}.{2-1}.{4}{3}"),
        (r"stage(\d+)_block(\d+)_proj_conv", "layer{1}.{2-1}.downsample.0"),
        (r"stage(\d+)_block(\d+)_proj_bn", "layer{1}.{2-1}.downsample.1"),
        (r"predictions", "fc"),
    ),
    head=("fc",),
)

#: timm's legacy SE-ResNet(X)t checkpoints (``timm.models.get_pretrained_cfg``): Cadene's files, hosted on
#: timm's GitHub releases rather than the Hugging Face hub, hence the URL replaced.
TIMM_RELEASES = "https://github.com/rwightman/pytorch-image-models/releases/download/"
TIMM_CHECKPOINTS = {
    "se_resnet50": (
        dataclasses.replace(timm_checkpoint("legacy_seresnet50.in1k", interpolation="bilinear"),
                            url=TIMM_RELEASES + "v0.1-cadene/se_resnet50-ce0d4300.pth"),
    ),
    "se_resnext50_32x4d": (
        dataclasses.replace(timm_checkpoint("legacy_seresnext50_32x4d.in1k", interpolation="bilinear"),
                            url=TIMM_RELEASES + "v0.1-weights/legacy_se_resnext50_32x4d-f3651bad.pth"),
    ),
}
#: Cadene's SENet state_dict (pretrained-models ``senet.py``; timm ``legacy_seresnet50`` /
#: ``legacy_seresnext50_32x4d``) onto our layer names: ``layer0`` is the stem, ``se_module`` the SE.
LEGACY_SE_KEYS = KeyMap(
    rules=(
        (r"stem_(conv|bn)", "layer0.{1}1"),
        (r"stage(\d+)_block(\d+)_conv(\d)_(conv|bn)", "layer{1}.{2-1}.{4}{3}"),
        (r"stage(\d+)_block(\d+)_proj_conv", "layer{1}.{2-1}.downsample.0"),
        (r"stage(\d+)_block(\d+)_proj_bn", "layer{1}.{2-1}.downsample.1"),
        (r"stage(\d+)_block(\d+)_se/reduce", "layer{1}.{2-1}.se_module.fc1"),
        (r"stage(\d+)_block(\d+)_se/expand", "layer{1}.{2-1}.se_module.fc2"),
        (r"predictions", "last_linear"),
    ),
    head=("last_linear",),
)


def _follows(name):
    for prefix, source in PAPER_SOURCES.items():
        if name.startswith(prefix):
            return source
    return "torchvision resnet (v1.5: stride in the 3x3)"


@register_model(
    family="resnet",
    paper="Deep Residual Learning for Image Recognition",
    url="https://arxiv.org/abs/1512.03385", year=2016,
    variants=[
        Variant(name, row.config, params=row.params, macs=row.macs,
                accuracy=row.accuracy, follows=_follows(name), notes=NOTES.get(name, ""),
                keras_applications=KERAS_APPLICATIONS.get(name), checkpoints=TORCHVISION_CHECKPOINTS.get(name, ()))
        for name, row in IMAGENET_RESNETS.items()
    ],
    tuner_knobs={"se_ratio": choice(0.0, 0.0625), "drop_path_rate": DROP_PATH},
    key_maps={"torchvision": TORCHVISION_KEYS},
)
def resnet(*, inputs, num_classes, include_top, pooling, classifier_activation, block="bottleneck",
           depths=(3, 4, 6, 3), groups=1, width_per_group=64, stride_in_1x1=False, shortcut="B",
           zero_init_residual=False, se_ratio=0.0, drop_path_rate=0.0, stem_pool="padded"):
    """ResNet / ResNeXt / SE-ResNet for ImageNet-size input.

    Args:
        block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"``.
        depths: blocks per stage.
        groups, width_per_group: ResNeXt cardinality and bottleneck width (32x4d = 32, 4).
        stride_in_1x1: the paper's original placement of the stride (first 1x1 conv) instead of
            v1.5's 3x3; same parameters, fewer MACs (3.88G vs 4.09G for ResNet-50).
        shortcut: ``"A"`` zero-padding identity, ``"B"`` projection when the shape changes
            (torchvision), ``"C"`` projection always (paper section 3.3).
        zero_init_residual: start each residual branch's last BN at gamma=0 (Goyal et al. 2017).
        se_ratio: squeeze-excite in every block with this reduction (1/16 in SENet); 0 = none.
        drop_path_rate: stochastic depth, rising linearly to this rate over the blocks.
        stem_pool: the 3x3/2 max-pool after the stem: ``"padded"`` (torchvision: one pixel of
            padding) or ``"ceil"`` (Caffe, Cadene's SENets: no padding, output size rounded up).
    """
    check_choice(block, ("basic", "bottleneck"), "block", "resnet")
    check_choice(stem_pool, tuple(STEM_POOLS), "stem_pool", "resnet")
    check_choice(shortcut, SHORTCUTS, "shortcut", "resnet")
    check_range(se_ratio, 0.0, 1.0, "se_ratio", "resnet")
    check_range(drop_path_rate, 0.0, 0.99, "drop_path_rate", "resnet")
    if not isinstance(groups, int) or groups < 1 or not isinstance(width_per_group, int) or width_per_group < 1:
        raise ValueError(f"resnet: groups and width_per_group must be positive integers, received "
                         f"groups={groups!r}, width_per_group={width_per_group!r}")
    if block == "basic" and (groups != 1 or width_per_group != 64):
        raise ValueError("resnet: basic blocks support only groups=1 and width_per_group=64 "
                         f"(received groups={groups}, width_per_group={width_per_group})")
    x = conv_bn_act(inputs, 64, 7, strides=2, name="stem")
    x = max_pool(x, 3, 2, **STEM_POOLS[stem_pool], name="stem_pool")
    x = residual_stages(x, block=block, depths=depths, widths=(64, 128, 256, 512), groups=groups,
                        width_per_group=width_per_group, shortcut_kind=shortcut, stride_in_1x1=stride_in_1x1,
                        se_ratio=se_ratio, drop_path_rate=drop_path_rate, zero_init_residual=zero_init_residual)
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)


register_model(
    family="resnet",
    paper="Squeeze-and-Excitation Networks",
    url="https://arxiv.org/abs/1709.01507", year=2018,
    variants=[
        Variant(name, row.config, params=row.params, macs=row.macs, accuracy=row.accuracy, follows=_follows(name),
                notes=NOTES.get(name, ""), checkpoints=TIMM_CHECKPOINTS.get(name, ()))
        for name, row in SE_RESNETS.items()
    ],
    tuner_knobs={"se_ratio": choice(0.0, 0.0625), "drop_path_rate": DROP_PATH},
    key_maps={"timm": LEGACY_SE_KEYS},
)(resnet)


#: timm's published ResNetV2 weights (``timm.models.get_pretrained_cfg``; timm has no resnetv2_152 checkpoint).
TIMM_V2_CHECKPOINTS = {
    "resnet50_v2": (
        timm_checkpoint("resnetv2_50.a1h_in1k", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_size=224,
                        crop_pct=0.95, interpolation="bicubic"),
    ),
    "resnet101_v2": (
        timm_checkpoint("resnetv2_101.a1h_in1k", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_size=224,
                        crop_pct=0.95, interpolation="bicubic"),
    ),
}
#: timm's ResNetV2 state_dict (``timm.models.resnetv2``, PreActBottleneck) onto our layer names: the
#: BN-ReLU before a block's conv ``n`` is timm's ``norm{n}``; timm's classifier is a 1x1 conv.
TIMM_V2_KEYS = KeyMap(
    rules=(
        (r"stem_conv", "stem.conv"),
        (r"stage(\d+)_block(\d+)_preact_bn", "stages.{1-1}.blocks.{2-1}.norm1"),
        (r"stage(\d+)_block(\d+)_conv1_bn", "stages.{1-1}.blocks.{2-1}.norm2"),
        (r"stage(\d+)_block(\d+)_conv2_bn", "stages.{1-1}.blocks.{2-1}.norm3"),
        (r"stage(\d+)_block(\d+)_conv(\d)_conv", "stages.{1-1}.blocks.{2-1}.conv{3}"),
        (r"stage(\d+)_block(\d+)_proj_conv", "stages.{1-1}.blocks.{2-1}.downsample.conv"),
        (r"post_bn", "norm"),
        (r"predictions", "head.fc"),
    ),
    head=("head.fc",),
)


@register_model(
    family="resnet_v2",
    paper="Identity Mappings in Deep Residual Networks",
    url="https://arxiv.org/abs/1603.05027", year=2016,
    follows="paper (full pre-activation) / timm resnetv2 layout: no conv bias, projection shortcut "
            "from the activated input, stride in the 3x3, final BN-ReLU",
    variants=[
        Variant("resnet50_v2", {"depths": (3, 4, 6, 3)}, params=25_549_352, macs=4.11e9,
                accuracy="top-1 76.0 (Keras)",
                notes="reference: 25.55M (timm resnetv2_50); keras.applications.ResNet50V2 has 25,613,800 total "
                      "because it keeps conv biases and puts the stride at the end of each stack",
                keras_applications=("ResNet50V2", {}), checkpoints=TIMM_V2_CHECKPOINTS["resnet50_v2"]),
        Variant("resnet101_v2", {"depths": (3, 4, 23, 3)}, params=44_541_480, notes="count derived [C]",
                checkpoints=TIMM_V2_CHECKPOINTS["resnet101_v2"]),
        Variant("resnet152_v2", {"depths": (3, 8, 36, 3)}, params=60_185_128, notes="count derived [C]"),
    ],
    tuner_knobs={"drop_path_rate": DROP_PATH},
    key_maps={"timm": TIMM_V2_KEYS},
    features=FeatureLevels(candidates=r"stem_conv|stage\d+_block\d+_add",
                           follows="timm feature_info (resnetv2_50): the stem conv, each stage's last residual sum "
                                   "(before the next pre-activation; the last one before the final BN-ReLU)"),
)
def resnet_v2(*, inputs, num_classes, include_top, pooling, classifier_activation, depths=(3, 4, 6, 3),
              drop_path_rate=0.0):
    """Pre-activation ResNet (v2) with bottleneck blocks."""
    check_range(drop_path_rate, 0.0, 0.99, "drop_path_rate", "resnet_v2")
    x = symmetric_conv(inputs, 64, 7, strides=2, use_bias=False, name="stem_conv")
    # the pool reads the raw conv (negative values too): padded with -inf, as timm's MaxPool2d(padding=1)
    x = max_pool(x, 3, 2, padding=1, pad_value=float("-inf"), name="stem_pool")
    x = residual_stages(x, block="preact", depths=depths, widths=(64, 128, 256, 512), drop_path_rate=drop_path_rate)
    x = layers.ReLU(name="post_relu")(batch_norm(x, name="post_bn"))
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)


#: CIFAR ResNets: depth 6n+2. Exact counts derived from the paper's definition [C];
#: Table 6 prints them rounded: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M.
CIFAR_RESNETS = {
    "resnet20": ResNetRow(config=dict(depth=20), params=269_722, accuracy="CIFAR-10 error 8.75%"),
    "resnet32": ResNetRow(config=dict(depth=32), params=464_154, accuracy="CIFAR-10 error 7.51%"),
    "resnet44": ResNetRow(config=dict(depth=44), params=658_586, accuracy="CIFAR-10 error 7.17%"),
    "resnet56": ResNetRow(config=dict(depth=56), params=853_018, accuracy="CIFAR-10 error 6.97%"),
    "resnet110": ResNetRow(config=dict(depth=110), params=1_727_962, accuracy="CIFAR-10 error 6.43%"),
    "resnet1202": ResNetRow(config=dict(depth=1202), params=19_421_274, accuracy="CIFAR-10 error 7.93%"),
}
CIFAR_NOTES = {
    "resnet110": "exact count derived from the paper's definition; the paper's Table 6 rounds it. Its akamaster "
                 "checkpoint is checked against the 8-hex sha256 prefix its name carries (as torch.hub does) and was "
                 "not loaded here: the file was not at hand",
    "resnet1202": "the paper's 1202-layer net (section 4.2, Table 6: 19.4M); its Keras graph has 4,210 layers, "
                  "which Keras walks recursively: importing keras_cnn raises Python's recursion limit to 10,000. "
                  "Its akamaster checkpoint is checked against the 8-hex sha256 prefix its name carries (as torch.hub "
                  "does) and was not loaded here: the file was not at hand",
}

#: akamaster/pytorch_resnet_cifar10 (BSD-2-Clause): the most used trained copies of the paper's CIFAR-10 nets,
#: option A shortcuts, published as torch.hub files whose names carry the start of their sha256.
AKAMASTER_URL = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/"
#: its files' full sha256, computed from the published files (resnet110's and resnet1202's are not recorded
#: here: those two are checked against the 8 hex digits their names carry, as torch.hub checks them)
AKAMASTER_SHA256 = {
    "resnet20-12fca82f.th": "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8",
    "resnet32-d509ac18.th": "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850",
    "resnet44-014dd654.th": "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4",
    "resnet56-4bfd9763.th": "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367",
}
#: CIFAR-10 test top-1 the repository reports (100 - its table's error: 8.27, 7.37, 6.90, 6.61, 6.32, 6.18 %)
AKAMASTER_FILES = {
    "resnet20": ("resnet20-12fca82f.th", 91.73),
    "resnet32": ("resnet32-d509ac18.th", 92.63),
    "resnet44": ("resnet44-014dd654.th", 93.10),
    "resnet56": ("resnet56-4bfd9763.th", 93.39),
    "resnet110": ("resnet110-1d1ed7c2.th", 93.68),
    "resnet1202": ("resnet1202-f3b1deed.th", 93.82),
}


def akamaster_checkpoint(file: str, top1: float) -> Checkpoint:
    """One of akamaster/pytorch_resnet_cifar10's trained nets by its file name: its training script's
    input conventions (32x32 RGB, ImageNet's mean and std, no resize or crop) and CIFAR-10's classes."""
    return Checkpoint(url=AKAMASTER_URL + file, sha256=AKAMASTER_SHA256.get(file, ""), layout="akamaster",
                      tag=file.split("-")[0], num_classes=10, crop_size=32, resize_size=32, top1=top1,
                      options={"shortcut": "A"}, dataset="cifar10")


AKAMASTER_CHECKPOINTS = {name: (akamaster_checkpoint(*row),) for name, row in AKAMASTER_FILES.items()}
#: akamaster's state_dict (its ``resnet.py``: ``conv1``/``bn1``, ``layer{1,2,3}.{i}`` BasicBlocks with
#: ``conv1``/``bn1``/``conv2``/``bn2``, the classifier ``linear``) onto our layer names. Option A's shortcut has
#: no parameters; the repository's option B projection is ``shortcut.0`` (conv) and ``shortcut.1`` (BN).
#: Its files keep DataParallel's ``module.`` prefix, which :mod:`keras_cnn.weights.files` drops.
AKAMASTER_KEYS = KeyMap(
    rules=(
        (r"stem_conv", "conv1"),
        (r"stem_bn", "bn1"),
        (r"stage(\d+)_block(\d+)_conv(\d)_(conv|bn)", "layer{1}.{2-1}.{4}{3}"),
        (r"stage(\d+)_block(\d+)_proj_conv", "layer{1}.{2-1}.shortcut.0"),
        (r"stage(\d+)_block(\d+)_proj_bn", "layer{1}.{2-1}.shortcut.1"),
        (r"predictions", "linear"),
    ),
    head=("linear",),
)


@register_model(
    family="resnet_cifar",
    paper="Deep Residual Learning for Image Recognition",
    url="https://arxiv.org/abs/1512.03385", year=2016, input_shape=(32, 32, 3), min_input_size=8,
    num_classes=10,
    follows="paper section 4.2: 3x3 stem, stages of 16-32-64 channels, option A shortcuts",
    variants=[Variant(name, row.config, params=row.params, accuracy=row.accuracy,
                      notes=CIFAR_NOTES.get(name, "exact count derived from the paper's definition; the paper's "
                                                  "Table 6 rounds it"),
                      checkpoints=AKAMASTER_CHECKPOINTS.get(name, ()))
              for name, row in CIFAR_RESNETS.items()],
    tuner_knobs={"drop_path_rate": DROP_PATH},
    key_maps={"akamaster": AKAMASTER_KEYS},
)
def resnet_cifar(*, inputs, num_classes, include_top, pooling, classifier_activation, depth=20, shortcut="A",
                 drop_path_rate=0.0):
    """The paper's CIFAR-10 ResNets (depth 6n+2) for the deep-vs-shallow experiment.

    He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
    https://arxiv.org/abs/1512.03385, section 4.2. Option A's new channels are zeros split evenly
    on both sides of the subsampled input (``ZeroPadShortcut``), as akamaster/pytorch_resnet_cifar10
    pads them, whose trained files load with ``weights="akamaster"`` (or ``"cifar10"``).

    Args:
        depth: 6n+2 (20, 32, 44, 56, 110, 1202).
        shortcut: ``"A"`` (paper's choice for CIFAR), ``"B"`` or ``"C"``.
    """
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"resnet_cifar: depth must be 6n+2 (20, 32, 44, 56, 110, ...), received {depth!r}")
    check_choice(shortcut, SHORTCUTS, "shortcut", "resnet_cifar")
    n = (depth - 2) // 6
    x = conv_bn_act(inputs, 16, 3, name="stem")
    x = residual_stages(x, block="basic", depths=(n, n, n), widths=(16, 32, 64), shortcut_kind=shortcut,
                        drop_path_rate=drop_path_rate)
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)
