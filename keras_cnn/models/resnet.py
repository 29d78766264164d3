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

The blocks here (basic, bottleneck, pre-activation) are shared by the CSP nets.

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("resnet20").output_shape           # CIFAR-10 net, 32x32x3 input
    (None, 10)
    >>> keras_cnn.build("resnext50_32x4d", num_classes=10).output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import (
    batch_norm,
    check_choice,
    check_range,
    conv_bn_act,
    max_pool,
    pooled_head,
    symmetric_conv,
)
from keras_cnn.layers.drop_path import DropPath
from keras_cnn.layers.squeeze_excite import SqueezeExcite
from keras_cnn.layers.zero_pad_shortcut import ZeroPadShortcut
from keras_cnn.models.spec import Variant, register_model

SHORTCUTS = ("A", "B", "C")


def shortcut(x, filters, strides, kind, name, *, preact=None):
    """Residual shortcut: identity, option A (zero pad), or a 1x1 projection (B: when the shape
    changes, C: always). ``preact`` is the pre-activated input projections read in ResNet v2."""
    changes = strides != 1 or x.shape[-1] != filters
    if kind == "C" or (kind == "B" and changes):
        source = x if preact is None else preact
        y = symmetric_conv(source, filters, 1, strides=strides, use_bias=False, name=f"{name}_proj_conv")
        return y if preact is not None else batch_norm(y, name=f"{name}_proj_bn")
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
    y = symmetric_conv(y, filters, 3, use_bias=False, name=f"{name}_conv2_conv")
    y = batch_norm(y, name=f"{name}_conv2_bn", gamma_initializer="zeros" if zero_init_residual else "ones")
    y = _finish_residual(identity, y, se_ratio=se_ratio, drop_path=drop_path, name=name)
    return layers.ReLU(name=f"{name}_out")(y)


def bottleneck_block(x, filters, strides, *, groups=1, width=None, shortcut_kind="B", stride_in_1x1=False,
                     se_ratio=0.0, drop_path=0.0, zero_init_residual=False, name):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand to ``filters``; ReLU after the add."""
    width = width or filters // 4
    s1, s3 = (strides, 1) if stride_in_1x1 else (1, strides)
    identity = shortcut(x, filters, strides, shortcut_kind, name)
    y = conv_bn_act(x, width, 1, strides=s1, name=f"{name}_conv1")
    y = conv_bn_act(y, width, 3, strides=s3, groups=groups, name=f"{name}_conv2")
    y = symmetric_conv(y, filters, 1, use_bias=False, name=f"{name}_conv3_conv")
    y = batch_norm(y, name=f"{name}_conv3_bn", gamma_initializer="zeros" if zero_init_residual else "ones")
    y = _finish_residual(identity, y, se_ratio=se_ratio, drop_path=drop_path, name=name)
    return layers.ReLU(name=f"{name}_out")(y)


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


# name: (block, depths, extra config, reference params, reference MACs, top-1)
IMAGENET_RESNETS = {
    "resnet18": ("basic", (2, 2, 2, 2), {}, 11_689_512, 1.81e9, "69.76"),
    "resnet34": ("basic", (3, 4, 6, 3), {}, 21_797_672, 3.66e9, "73.31"),
    "resnet50": ("bottleneck", (3, 4, 6, 3), {}, 25_557_032, 4.09e9, "76.13"),
    "resnet101": ("bottleneck", (3, 4, 23, 3), {}, 44_549_160, 7.80e9, "77.37"),
    "resnet152": ("bottleneck", (3, 8, 36, 3), {}, 60_192_808, 11.51e9, "78.31"),
    "resnext50_32x4d": ("bottleneck", (3, 4, 6, 3), {"groups": 32, "width_per_group": 4}, 25_028_904, 4.23e9, "77.62"),
    "resnext101_32x8d": ("bottleneck", (3, 4, 23, 3), {"groups": 32, "width_per_group": 8}, 88_791_336, 16.41e9, "79.31"),
    "resnext101_64x4d": ("bottleneck", (3, 4, 23, 3), {"groups": 64, "width_per_group": 4}, 83_455_272, 15.46e9, "83.25"),
    "se_resnet50": ("bottleneck", (3, 4, 6, 3), {"se_ratio": 1 / 16, "stride_in_1x1": True}, 28_088_024, 3.88e9,
                    "77.65"),
    "se_resnext50_32x4d": ("bottleneck", (3, 4, 6, 3), {"se_ratio": 1 / 16, "groups": 32, "width_per_group": 4},
                           27_559_896, 4.25e9, "79.08 (Cadene)"),
}
PAPER_SOURCES = {
    "resnext": "torchvision resnext (paper Table 1)",
    "se_resnet": "Cadene pretrained-models senet (SE reduction 16; Caffe layout: stride in the first 1x1)",
    "se_": "Cadene pretrained-models senet (SE reduction 16)",
}


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
        Variant(name, {"block": block, "depths": depths, **extra}, params=params, macs=macs,
                accuracy=f"top-1 {top1}", follows=_follows(name),
                notes=("se_resnext50_32x4d: 27,559,896 is the count of Cadene's se_resnext50_32x4d, "
                       "derived from its definition (the paper gives no number)") if name == "se_resnext50_32x4d" else "")
        for name, (block, depths, extra, params, macs, top1) in IMAGENET_RESNETS.items()
    ],
)
def resnet(*, inputs, num_classes, include_top, pooling, classifier_activation, block="bottleneck",
           depths=(3, 4, 6, 3), groups=1, width_per_group=64, stride_in_1x1=False, shortcut="B",
           zero_init_residual=False, se_ratio=0.0, drop_path_rate=0.0):
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
    """
    check_choice(block, ("basic", "bottleneck"), "block", "resnet")
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
    x = max_pool(x, 3, 2, padding=1, name="stem_pool")
    x = residual_stages(x, block=block, depths=depths, widths=(64, 128, 256, 512), groups=groups,
                        width_per_group=width_per_group, shortcut_kind=shortcut, stride_in_1x1=stride_in_1x1,
                        se_ratio=se_ratio, drop_path_rate=drop_path_rate, zero_init_residual=zero_init_residual)
    return pooled_output(x, num_classes, include_top, pooling, classifier_activation)


def pooled_output(x, num_classes, include_top, pooling, classifier_activation):
    return pooled_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                       classifier_activation=classifier_activation)


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
                      "because it keeps conv biases and puts the stride at the end of each stack"),
        Variant("resnet101_v2", {"depths": (3, 4, 23, 3)}, params=44_541_480, notes="count derived [C]"),
        Variant("resnet152_v2", {"depths": (3, 8, 36, 3)}, params=60_185_128, notes="count derived [C]"),
    ],
)
def resnet_v2(*, inputs, num_classes, include_top, pooling, classifier_activation, depths=(3, 4, 6, 3),
              drop_path_rate=0.0):
    """Pre-activation ResNet (v2) with bottleneck blocks."""
    check_range(drop_path_rate, 0.0, 0.99, "drop_path_rate", "resnet_v2")
    x = symmetric_conv(inputs, 64, 7, strides=2, use_bias=False, name="stem_conv")
    x = max_pool(x, 3, 2, padding=1, name="stem_pool")
    x = residual_stages(x, block="preact", depths=depths, widths=(64, 128, 256, 512), drop_path_rate=drop_path_rate)
    x = layers.ReLU(name="post_relu")(batch_norm(x, name="post_bn"))
    return pooled_output(x, num_classes, include_top, pooling, classifier_activation)


#: CIFAR ResNets: depth 6n+2. Exact counts derived from the paper's definition [C];
#: Table 6 prints them rounded: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M.
CIFAR_RESNETS = {20: (269_722, "8.75"), 32: (464_154, "7.51"), 44: (658_586, "7.17"),
                 56: (853_018, "6.97"), 110: (1_727_962, "6.43")}


@register_model(
    family="resnet_cifar",
    paper="Deep Residual Learning for Image Recognition",
    url="https://arxiv.org/abs/1512.03385", year=2016, input_shape=(32, 32, 3), min_input_size=8,
    num_classes=10,
    follows="paper section 4.2: 3x3 stem, stages of 16-32-64 channels, option A shortcuts",
    variants=[Variant(f"resnet{depth}", {"depth": depth}, params=params, accuracy=f"CIFAR-10 error {err}%",
                      notes="exact count derived from the paper's definition; the paper's Table 6 rounds it")
              for depth, (params, err) in CIFAR_RESNETS.items()],
)
def resnet_cifar(*, inputs, num_classes, include_top, pooling, classifier_activation, depth=20, shortcut="A",
                 drop_path_rate=0.0):
    """The paper's CIFAR-10 ResNets (depth 6n+2) for the deep-vs-shallow experiment.

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
    return pooled_output(x, num_classes, include_top, pooling, classifier_activation)
