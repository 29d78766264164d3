"""MobileNet v1, v2 and v3, with width multipliers, following torchvision / keras.applications.

- v1: Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
  Applications", 2017, https://arxiv.org/abs/1704.04861 (Table 1; keras.applications.MobileNet).
- v2: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018,
  https://arxiv.org/abs/1801.04381 (Table 2; torchvision mobilenet_v2).
- v3: Howard et al., "Searching for MobileNetV3", ICCV 2019, https://arxiv.org/abs/1905.02244
  (Tables 1 and 2; torchvision mobilenet_v3_large/small).

Designed for TFLite: static channel counts, Keras' own ``hard_swish`` / ``hard_sigmoid`` (the
same functions as PyTorch's: ``hard_sigmoid(x) = relu6(x + 3) / 6``), and stride-2 convolutions
padded symmetrically like the reference code. v3's BatchNorms use epsilon 1e-3, as torchvision and
the TF reference do (v2 keeps PyTorch's default 1e-5, as torchvision's mobilenet_v2).

Trained weights: torchvision's checkpoints of mobilenet_v2 and mobilenet_v3_large/small load
through the key maps below (``torchvision.models.mobilenetv2`` / ``mobilenetv3`` module names), timm's
``mobilenetv1_100.ra4_e3600_r224_in1k`` into mobilenet_v1 (``timm.models.efficientnet`` module names).

Example:
    >>> import keras_cnn
    >>> model = keras_cnn.build("mobilenet_v3_small", num_classes=10)
    >>> model.output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import (
    BN_EPSILON,
    batch_norm,
    check_choice,
    check_range,
    classifier_head,
    conv_bn_act,
    make_divisible,
    symmetric_conv_dw,
)
from keras_cnn.layers.squeeze_excite import SqueezeExcite
from keras_cnn.models.spec import (
    DROPOUT,
    FeatureLevels,
    KeyMap,
    Recipe,
    Variant,
    choice,
    register_model,
    timm_checkpoint,
    torchvision_checkpoint,
)

#: Training defaults of the mobile line (also shufflenet.py): the MobileNet-v3 / ShuffleNet-v2 reference recipes.
RECIPE = Recipe(learning_rate=2e-3, weight_decay=4e-5, label_smoothing=0.1,
                why="mobile line: light weight decay, label smoothing 0.1")
TUNER_KNOBS = {"alpha": choice(0.35, 0.5, 0.75, 1.0), "dropout": DROPOUT}

# --------------------------------------------------------------------------- MobileNet v1
#: (stride, output channels) of the 13 depthwise-separable layers, Table 1 of the paper.
V1_LAYERS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
             (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))
#: timm's ``mobilenetv1_100`` (``efficientnet.py``'s ``_gen_mobilenet_v1``) groups the 13 layers into five
#: stages of ``dsa`` blocks (depthwise-separable, activation after the pointwise conv too): 1, 2, 2, 6, 2.
V1_TIMM_STAGES = (1, 2, 2, 6, 2)
#: timm's MobileNet-v1 checkpoint: exactly our 4,231,976 parameters, ReLU6 after every BN and every
#: stride-2 conv padded one pixel on each side (PyTorch's padding), as :func:`mobilenet_v1` builds it by
#: default (``activation="relu6"``; keras.applications' MobileNet pads stride-2 convs on the bottom/right only)
V1_TIMM_CHECKPOINTS = (
    timm_checkpoint("mobilenetv1_100.ra4_e3600_r224_in1k", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_size=224,
                    crop_pct=0.875, interpolation="bicubic", options={"activation": "relu6"}),
)


def _v1_timm_keys():
    """timm's ``mobilenetv1_100`` state_dict: ``conv_stem`` / ``bn1`` the stem, ``blocks.{stage}.{i}`` our
    depthwise-separable layers in order (``conv_dw``, ``bn1``, ``conv_pw``, ``bn2``), ``classifier`` the Linear."""
    rules = [("stem_conv", "conv_stem"), ("stem_bn", "bn1")]
    blocks = [f"blocks.{stage}.{i}" for stage, count in enumerate(V1_TIMM_STAGES) for i in range(count)]
    for index, prefix in enumerate(blocks, start=1):
        rules += [(f"block{index}_dw", f"{prefix}.conv_dw"), (f"block{index}_dw_bn", f"{prefix}.bn1"),
                  (f"block{index}_pw_conv", f"{prefix}.conv_pw"), (f"block{index}_pw_bn", f"{prefix}.bn2")]
    rules.append(("predictions", "classifier"))
    return KeyMap(rules=tuple(rules), head=("classifier",))


@register_model(
    family="mobilenet",
    paper="MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
    url="https://arxiv.org/abs/1704.04861", year=2017,
    variants=[Variant("mobilenet_v1", params=4_231_976, macs=569e6, accuracy="top-1 70.9",
                      follows="paper Table 1 / keras.applications.MobileNet",
                      notes="alpha 0.75/0.5/0.25 give 2,585,560 / 1,331,592 / 470,072 params",
                      keras_applications=("MobileNet", {}), checkpoints=V1_TIMM_CHECKPOINTS)],
    recipe=RECIPE,
    tuner_knobs=TUNER_KNOBS,
    key_maps={"timm": _v1_timm_keys()},
)
def mobilenet_v1(*, inputs, num_classes, include_top, pooling, classifier_activation, alpha=1.0,
                 depth_multiplier=1, dropout=1e-3, activation="relu6"):
    """MobileNet v1: a 3x3 stem and 13 depthwise-separable layers, width multiplier ``alpha``.

    Args:
        alpha: width multiplier in [0.25, 1.0] (channels ``int(c * alpha)``, as keras.applications).
        depth_multiplier: channel multiplier of the depthwise convolutions (resolution is set
            with ``input_shape``).
        dropout: dropout before the classifier.
        activation: ``"relu6"`` (reference code) or ``"relu"`` (paper text).
    """
    check_range(alpha, 0.25, 1.0, "alpha", "mobilenet_v1")
    if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
        raise ValueError(f"mobilenet_v1: depth_multiplier must be a positive integer, received {depth_multiplier!r}")
    x = conv_bn_act(inputs, int(32 * alpha), 3, strides=2, activation=activation, name="stem")
    for index, (stride, filters) in enumerate(V1_LAYERS, start=1):
        x = symmetric_conv_dw(x, stride, depth_multiplier, name=f"block{index}_dw")
        x = batch_norm(x, name=f"block{index}_dw_bn")
        x = layers.Activation(activation, name=f"block{index}_dw_act")(x)
        x = conv_bn_act(x, int(filters * alpha), 1, activation=activation, name=f"block{index}_pw")
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation, dropout=dropout or None)


# --------------------------------------------------------------------------- shared inverted residual
def inverted_residual(x, *, expanded, filters, kernel_size, strides, activation, se=False, bn_epsilon=BN_EPSILON,
                      name):
    """MobileNet v2/v3 block: 1x1 expand (skipped when not wider), depthwise, optional SE,
    linear 1x1 projection, and a residual add when shapes agree."""
    in_channels = x.shape[-1]
    shortcut = x
    if expanded != in_channels:
        x = conv_bn_act(x, expanded, 1, activation=activation, bn_epsilon=bn_epsilon, name=f"{name}_expand")
    x = symmetric_conv_dw(x, strides, kernel_size=kernel_size, name=f"{name}_dw")
    x = batch_norm(x, name=f"{name}_dw_bn", epsilon=bn_epsilon)
    x = layers.Activation(activation, name=f"{name}_dw_act")(x)
    if se:
        x = SqueezeExcite(ratio=0.25, divisor=8, activation="relu", gate="hard_sigmoid", name=f"{name}_se")(x)
    x = conv_bn_act(x, filters, 1, activation=None, bn_epsilon=bn_epsilon, name=f"{name}_project")
    if strides == 1 and in_channels == filters:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


#: Our layer names of each torchvision module kind inside an inverted residual's ``Sequential``:
#: ``(our suffix, what follows the module index)``. ``Conv2dNormActivation`` holds the conv at ``.0``
#: and the BN at ``.1``; SqueezeExcitation's convs are ``fc1`` / ``fc2``; v2's projection is a bare
#: conv and a bare BN, one index each.
TORCHVISION_BLOCK_PARTS = {
    "expand": (("expand_conv", ".0"), ("expand_bn", ".1")),
    "dw": (("dw", ".0"), ("dw_bn", ".1")),
    "se": (("se/reduce", ".fc1"), ("se/expand", ".fc2")),
    "project": (("project_conv", ".0"), ("project_bn", ".1")),
    "project_conv": (("project_conv", ""),),
    "project_bn": (("project_bn", ""),),
}


def _conv_bn_rules(name, prefix):
    """A ``conv_bn_act`` unit onto a torchvision ``Conv2dNormActivation`` at ``prefix``."""
    return [(f"{name}_conv", f"{prefix}.0"), (f"{name}_bn", f"{prefix}.1")]


def _block_rules(name, prefix, parts):
    """Inverted residual ``name`` onto torchvision's ``Sequential`` ``prefix`` holding ``parts`` in order."""
    return [(f"{name}_{suffix}", f"{prefix}.{index}{tail}")
            for index, part in enumerate(parts) for suffix, tail in TORCHVISION_BLOCK_PARTS[part]]


# --------------------------------------------------------------------------- MobileNet v2
#: (expansion t, channels c, repeats n, first stride s), Table 2 of the paper.
V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1))


#: torchvision's MobileNetV2 checkpoints (``MobileNet_V2_Weights``), the default first.
V2_TORCHVISION_CHECKPOINTS = (
    torchvision_checkpoint("mobilenet_v2-7ebf99e0.pth", "IMAGENET1K_V2", resize_size=232, top1=72.154),
    torchvision_checkpoint("mobilenet_v2-b0353104.pth", top1=71.878),
)


def _v2_torchvision_keys():
    """torchvision's MobileNetV2 (``torchvision.models.mobilenetv2``): ``features.0`` the stem,
    ``features.{i + 1}.conv`` our block i (expand, depthwise, projection conv, projection BN; no
    expand where t = 1), the last conv after them, ``classifier.1`` the Linear."""
    rules, block = _conv_bn_rules("stem", "features.0"), 0
    for t, _, n, _ in V2_SETTINGS:
        for _ in range(n):
            parts = ("expand",) * (t != 1) + ("dw", "project_conv", "project_bn")
            rules += _block_rules(f"block{block}", f"features.{block + 1}.conv", parts)
            block += 1
    rules += [*_conv_bn_rules("last_conv", f"features.{block + 1}"), ("predictions", "classifier.1")]
    return KeyMap(rules=tuple(rules), head=("classifier.1",))


#: timm's ``feature_info`` (mobilenetv2_100): the stem, then each stage's last block output, the
#: 320-channel projection at stride 32 (the 1280 conv is the head's); not the next block's expansion,
#: which is still at the stride and is the graph's last cut there
V2_FEATURES = FeatureLevels(candidates=r"stem_act|block\d+_(project_bn|add)",
                            follows="timm feature_info (mobilenetv2_100)")
#: timm's (mobilenetv3_large_100 / _small_100): as V2, with the last 1x1 conv (960 / 576) at stride 32
V3_FEATURES = FeatureLevels(candidates=r"stem_act|block\d+_(project_bn|add)|last_conv_act",
                            follows="timm feature_info (mobilenetv3_large_100, mobilenetv3_small_100)")


@register_model(
    family="mobilenet",
    paper="MobileNetV2: Inverted Residuals and Linear Bottlenecks",
    url="https://arxiv.org/abs/1801.04381", year=2018,
    variants=[Variant("mobilenet_v2", params=3_504_872, macs=301e6, accuracy="top-1 71.88 (torchvision)",
                      follows="paper Table 2 / torchvision mobilenet_v2",
                      notes="alpha 1.4 gives about 6.11M params",
                      keras_applications=("MobileNetV2", {}), checkpoints=V2_TORCHVISION_CHECKPOINTS)],
    recipe=RECIPE,
    tuner_knobs=TUNER_KNOBS,
    key_maps={"torchvision": _v2_torchvision_keys()},
    features=V2_FEATURES,
)
def mobilenet_v2(*, inputs, num_classes, include_top, pooling, classifier_activation, alpha=1.0,
                 dropout=0.2):
    """MobileNet v2: inverted residuals with linear bottlenecks.

    Args:
        alpha: width multiplier in [0.25, 2.0]; channels rounded with ``make_divisible(c * alpha, 8)``
            and the last conv widened only for ``alpha > 1`` (as the reference code does).
        dropout: dropout before the classifier.
    """
    check_range(alpha, 0.25, 2.0, "alpha", "mobilenet_v2")
    x = conv_bn_act(inputs, make_divisible(32 * alpha), 3, strides=2, activation="relu6", name="stem")
    block = 0
    for t, c, n, s in V2_SETTINGS:
        filters = make_divisible(c * alpha)
        for i in range(n):
            x = inverted_residual(x, expanded=x.shape[-1] * t, filters=filters, kernel_size=3,
                                  strides=s if i == 0 else 1, activation="relu6", name=f"block{block}")
            block += 1
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    x = conv_bn_act(x, last, 1, activation="relu6", name="last_conv")
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation, dropout=dropout or None)


# --------------------------------------------------------------------------- MobileNet v3
#: (kernel, expanded, out, squeeze-excite, activation, stride), Tables 1 and 2 of the paper.
V3_LARGE = (
    (3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hard_swish", 2), (3, 200, 80, False, "hard_swish", 1),
    (3, 184, 80, False, "hard_swish", 1), (3, 184, 80, False, "hard_swish", 1),
    (3, 480, 112, True, "hard_swish", 1), (3, 672, 112, True, "hard_swish", 1),
    (5, 672, 160, True, "hard_swish", 2), (5, 960, 160, True, "hard_swish", 1),
    (5, 960, 160, True, "hard_swish", 1),
)
V3_SMALL = (
    (3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hard_swish", 2), (5, 240, 40, True, "hard_swish", 1),
    (5, 240, 40, True, "hard_swish", 1), (5, 120, 48, True, "hard_swish", 1),
    (5, 144, 48, True, "hard_swish", 1), (5, 288, 96, True, "hard_swish", 2),
    (5, 576, 96, True, "hard_swish", 1), (5, 576, 96, True, "hard_swish", 1),
)
V3_CONFIGS = {"large": (V3_LARGE, 1280), "small": (V3_SMALL, 1024)}
#: BatchNorm epsilon of torchvision's and the TF reference's MobileNetV3 (PyTorch's default is 1e-5).
V3_BN_EPSILON = 1e-3

#: torchvision's MobileNetV3 checkpoints (``MobileNet_V3_Large_Weights`` / ``_Small_``), the default first.
V3_TORCHVISION_CHECKPOINTS = {
    "large": (
        torchvision_checkpoint("mobilenet_v3_large-5c1a4163.pth", "IMAGENET1K_V2", resize_size=232, top1=75.274),
        torchvision_checkpoint("mobilenet_v3_large-8738ca79.pth", top1=74.042),
    ),
    "small": (torchvision_checkpoint("mobilenet_v3_small-047dcff4.pth", top1=67.668),),
}


def _v3_torchvision_keys(settings):
    """torchvision's MobileNetV3 (``torchvision.models.mobilenetv3``): ``features.0`` the stem,
    ``features.{i + 1}.block`` our block i (expand where wider than its input, depthwise, SE where
    the table has it, projection), the last conv after them; ``classifier.0`` the hidden Linear and
    ``classifier.3`` the output Linear, the only head (fine-tuning keeps the hidden Linear). The
    hidden Linear is ignored where no layer takes it (``include_top=False`` builds no head). Large
    and Small place their SE and expand convs differently, so each variant has its own map."""
    rules, in_channels = _conv_bn_rules("stem", "features.0"), 16
    for index, (_, expanded, out, se, _, _) in enumerate(settings):
        parts = ("expand",) * (expanded != in_channels) + ("dw",) + ("se",) * se + ("project",)
        rules += _block_rules(f"block{index}", f"features.{index + 1}.block", parts)
        in_channels = out
    rules += [*_conv_bn_rules("last_conv", f"features.{len(settings) + 1}"), ("head_dense", "classifier.0"),
              ("predictions", "classifier.3")]
    return KeyMap(rules=tuple(rules), head=("classifier.3",), ignore=(r".*\.num_batches_tracked", r"classifier\.0\..*"))


@register_model(
    family="mobilenet",
    paper="Searching for MobileNetV3",
    url="https://arxiv.org/abs/1905.02244", year=2019,
    follows="paper Tables 1-2 / torchvision mobilenet_v3",
    variants=[
        Variant("mobilenet_v3_large", {"size": "large"}, params=5_483_032, macs=217e6,
                accuracy="top-1 74.04 (torchvision)",
                notes="width arithmetic of torchvision: alpha 0.75 gives 3,377,576 params "
                      "(keras.applications' 3.99M keeps the 1280 head and scales expansions as "
                      "ratios); minimalistic gives 3,924,288 (reference about 3.92M)",
                keras_applications=("MobileNetV3Large", {}), checkpoints=V3_TORCHVISION_CHECKPOINTS["large"],
                key_maps={"torchvision": _v3_torchvision_keys(V3_LARGE)}),
        Variant("mobilenet_v3_small", {"size": "small"}, params=2_542_856, macs=57e6,
                accuracy="top-1 67.67 (torchvision)",
                notes="alpha 0.75 gives 1,653,920 (torchvision arithmetic; keras.applications' "
                      "2.04M keeps the 1024 head); minimalistic 2,044,736 (reference about 2.04M); "
                      "the 2.9M in older TF docs is stale",
                keras_applications=("MobileNetV3Small", {}), checkpoints=V3_TORCHVISION_CHECKPOINTS["small"],
                key_maps={"torchvision": _v3_torchvision_keys(V3_SMALL)}),
    ],
    recipe=RECIPE,
    tuner_knobs=TUNER_KNOBS,
    features=V3_FEATURES,
)
def mobilenet_v3(*, inputs, num_classes, include_top, pooling, classifier_activation, size="large",
                 alpha=1.0, minimalistic=False, dropout=0.2):
    """MobileNet v3 Large or Small.

    Args:
        size: ``"large"`` or ``"small"`` (set by the registry name).
        alpha: width multiplier in [0.25, 2.0]; every width, the head's included, is
            ``make_divisible(c * alpha, 8)`` (torchvision).
        minimalistic: the "minimalistic" models of the TF reference: no squeeze-excite, no
            hard-swish, 3x3 depthwise kernels only.
        dropout: dropout between the two head layers.
    """
    check_range(alpha, 0.25, 2.0, "alpha", "mobilenet_v3")
    check_choice(size, tuple(V3_CONFIGS), "size", "mobilenet_v3")
    settings, last_channel = V3_CONFIGS[size]
    hswish = "relu" if minimalistic else "hard_swish"
    x = conv_bn_act(inputs, make_divisible(16 * alpha), 3, strides=2, activation=hswish, bn_epsilon=V3_BN_EPSILON,
                    name="stem")
    for index, (kernel, expanded, out, se, act, stride) in enumerate(settings):
        if minimalistic:
            kernel, se, act = 3, False, "relu"
        x = inverted_residual(x, expanded=make_divisible(expanded * alpha), filters=make_divisible(out * alpha),
                              kernel_size=kernel, strides=stride, activation=act, se=se, bn_epsilon=V3_BN_EPSILON,
                              name=f"block{index}")
    x = conv_bn_act(x, make_divisible(settings[-1][1] * alpha), 1, activation=hswish, bn_epsilon=V3_BN_EPSILON,
                    name="last_conv")
    return classifier_head(
        x, include_top, pooling, num_classes, classifier_activation, dropout=dropout,
        hidden=lambda y: layers.Dense(make_divisible(last_channel * alpha), activation=hswish, name="head_dense")(y))
