"""GoogLeNet (Inception v1), BN-Inception (v2) and Inception v3; modules as branch tables.

- Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, https://arxiv.org/abs/1409.4842
  (Table 1; seed 003): real 5x5 branches, conv biases, no BN, LRN as in Caffe's bvlc_googlenet;
  ``aux_logits=True`` adds the two auxiliary classifiers (section 5) as named outputs
  ``aux1``/``aux2`` beside ``predictions``, trained with loss weights 0.3 (:func:`aux_loss_weights`,
  :func:`inference_model`). ``torchvision_style=True`` is torchvision's googlenet (3x3 in the
  "5x5" branch, BN convs without bias, no LRN; torchvision issue #906).
- Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing Internal
  Covariate Shift", ICML 2015, https://arxiv.org/abs/1502.03167 (Figure 5: BN-Inception, 5x5
  replaced by two 3x3; Cadene's bninception).
- Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016,
  https://arxiv.org/abs/1512.00567 (Table 1; torchvision inception_v3, average pools counting
  their zero padding as torchvision does).

Trained weights: ``googlenet`` loads torchvision's checkpoint into its ``torchvision_style=True``
net (the checkpoint row sets the option; a copy passed by path needs ``torchvision_style=True``),
``inception_v3`` torchvision's ``inception_v3_google``. torchvision runs both with
``transform_input=True``, which turns its ImageNet-normalized input into ``(x - 0.5) / 0.5``; so
their rows declare mean = std = 0.5 and our nets take that normalization directly (the pair test
builds the reference with ``transform_input=False`` and feeds it the same normalized images).
The checkpoints hold the auxiliary heads (``aux1``/``aux2``, ``AuxLogits``): with
``aux_logits=True`` they load into ours, without it the key maps ignore them.

A branch is a list of ops: ``(filters, kernel[, strides[, padding]])`` is a conv (kernel an int
or (kh, kw); padding ``"same"`` symmetric, ``"valid"`` or an int), ``("avg", k)`` a stride-1
average pool that counts its zero padding, ``("avg_same", k)`` one that does not, ``("max", k,
strides, padding)`` a max pool, and a final ``("fork", op_a, op_b)`` applies two convs to the
branch and concatenates them (Inception v3's E module, Inception v4's C module).

Example:
    >>> import keras_cnn
    >>> model = keras_cnn.build("googlenet", aux_logits=True, num_classes=10, input_shape=(96, 96, 3))
    >>> sorted(model.output_names)
    ['aux1', 'aux2', 'predictions']
    >>> inference = keras_cnn.models.inception.inference_model(model)
"""

import functools

import keras
from keras import layers

from keras_cnn.blocks import classifier_head, conv_act, conv_bn_act, max_pool, predictions
from keras_cnn.layers.adaptive_pool import AdaptiveAveragePooling2D
from keras_cnn.layers.lrn import LocalResponseNormalization
from keras_cnn.models.spec import DROPOUT, KeyMap, Recipe, Variant, register_model, torchvision_checkpoint

AUX_LOSS_WEIGHT = 0.3
#: torchvision's transform_input=True maps ImageNet-normalized input to (x - 0.5) / 0.5.
TRANSFORM_INPUT = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
#: Training defaults of the whole Inception line (also inception_v4.py).
RECIPE = Recipe(label_smoothing=0.1, why="Inception line: label smoothing 0.1 (Szegedy 2016)")


def make_conv(*, batch_norm=True, bn_epsilon=1e-3, use_bias=False):
    """The conv unit of a net, ``conv(x, filters, kernel_size, *, strides, padding, name)``:
    :func:`~keras_cnn.blocks.conv_bn_act` with this BN epsilon and conv bias (ReLU), or
    :func:`~keras_cnn.blocks.conv_act` (conv with bias, ReLU) for the pre-BN nets."""
    if batch_norm:
        return functools.partial(conv_bn_act, bn_epsilon=bn_epsilon, use_bias=use_bias)
    return conv_act


def apply_op(x, op, conv, name):
    if op[0] == "avg":  # count_include_pad=True (PyTorch's F.avg_pool2d default)
        pad = op[1] // 2
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
        return layers.AveragePooling2D(op[1], 1, name=name)(x)
    if op[0] == "avg_same":  # count_include_pad=False
        return layers.AveragePooling2D(op[1], 1, padding="same", name=name)(x)
    if op[0] == "max":
        _, size, strides, padding = op
        return max_pool(x, size, strides, padding=padding, name=name)
    if op[0] == "fork":
        return layers.Concatenate(name=f"{name}_concat")(
            [apply_op(x, sub, conv, f"{name}_{part}") for sub, part in zip(op[1:], "ab")])
    filters, kernel, *rest = op
    strides = rest[0] if rest else 1
    padding = rest[1] if len(rest) > 1 else "same"
    return conv(x, filters, kernel, strides=strides, padding=padding, name=name)


def inception_module(x, branches, conv, name):
    """Run each branch (a list of ops) on ``x`` and concatenate their outputs."""
    outputs = []
    for b, branch in enumerate(branches, start=1):
        y = x
        for i, op in enumerate(branch, start=1):
            y = apply_op(y, op, conv, f"{name}_b{b}_{i}")
        outputs.append(y)
    return layers.Concatenate(name=f"{name}_concat")(outputs)


# --------------------------------------------------------------------------- GoogLeNet
#: Table 1: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); "M" = 3x3/2 max-pool.
GOOGLENET_MODULES = (
    ("3a", 64, 96, 128, 16, 32, 32), ("3b", 128, 128, 192, 32, 96, 64), "M",
    ("4a", 192, 96, 208, 16, 48, 64), ("4b", 160, 112, 224, 24, 64, 64), ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64), ("4e", 256, 160, 320, 32, 128, 128), "M",
    ("5a", 256, 160, 320, 32, 128, 128), ("5b", 384, 192, 384, 48, 128, 128),
)


def googlenet_branches(c1, r3, c3, r5, c5, proj, five_kernel):
    return ([(c1, 1)], [(r3, 1), (c3, 3)], [(r5, 1), (c5, five_kernel)], [("max", 3, 1, 1), (proj, 1)])


def googlenet_aux(x, num_classes, classifier_activation, *, torchvision_style, name):
    """Auxiliary classifier: avg-pool 5x5/3 (torchvision: adaptive 4x4), 1x1 conv 128, FC 1024,
    dropout 0.7, FC classes."""
    if torchvision_style:
        x = AdaptiveAveragePooling2D(4, name=f"{name}_pool")(x)
    else:
        x = layers.AveragePooling2D(5, 3, name=f"{name}_pool")(x)
    x = make_conv(batch_norm=torchvision_style)(x, 128, 1, name=f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc1")(x)
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return predictions(x, num_classes, classifier_activation, name=name)


GOOGLENET_CHECKPOINTS = (
    torchvision_checkpoint("googlenet-1378be20.pth", top1=69.778, options={"torchvision_style": True},
                           **TRANSFORM_INPUT),
)
#: torchvision's googlenet state_dict (``torchvision.models.googlenet``) onto the
#: ``torchvision_style=True`` net; the aux heads' keys are ignored when it is built without them.
GOOGLENET_TORCHVISION_KEYS = KeyMap(
    rules=(
        (r"conv1_(conv|bn)", "conv1.{1}"),
        (r"conv2_reduce_(conv|bn)", "conv2.{1}"),
        (r"conv2_(conv|bn)", "conv3.{1}"),
        (r"inception(\d[a-e])_b1_1_(conv|bn)", "inception{1}.branch1.{2}"),
        (r"inception(\d[a-e])_b([234])_(\d)_(conv|bn)", "inception{1}.branch{2}.{3-1}.{4}"),
        (r"aux([12])_conv_(conv|bn)", "aux{1}.conv.{2}"),
        (r"aux([12])_fc1", "aux{1}.fc1"),
        (r"aux([12])", "aux{1}.fc2"),
        (r"predictions", "fc"),
    ),
    head=("fc", "aux1.fc2", "aux2.fc2"),
    ignore=(r".*\.num_batches_tracked", r"aux[12]\..*"),
)


@register_model(
    family="googlenet", paper="Going Deeper with Convolutions", url="https://arxiv.org/abs/1409.4842", year=2015,
    min_input_size=32,
    variants=[Variant("googlenet", params=6_998_552, macs=1.58e9, accuracy="top-1/5 69.8/89.6 (slim)",
                      follows="paper Table 1 (Caffe bvlc_googlenet: LRN, biases, no BN)",
                      notes="aux_logits=True: 13,378,280 params; torchvision_style=True: 6,624,904 "
                            "(13,004,888 with aux); counts derived from Table 1 [C]",
                      checkpoints=GOOGLENET_CHECKPOINTS)],
    recipe=RECIPE,
    tuner_knobs={"dropout": DROPOUT},
    key_maps={"torchvision": GOOGLENET_TORCHVISION_KEYS},
)
def googlenet(*, inputs, num_classes, include_top, pooling, classifier_activation, aux_logits=False,
              torchvision_style=False, dropout=None):
    """GoogLeNet / Inception v1.

    Args:
        aux_logits: add the two auxiliary classifiers (after 4a and 4d); the model then has
            three named outputs, ``predictions``, ``aux1``, ``aux2``. Needs input >= 112
            (the aux heads pool 5x5/3). Compile with ``loss_weights=aux_loss_weights(model)``.
        torchvision_style: torchvision's variant (3x3 "5x5" branch, BN, no LRN, dropout 0.2).
        dropout: before the classifier (default 0.4 paper, 0.2 torchvision).
    """
    if aux_logits and include_top and not torchvision_style and min(inputs.shape[1:3]) < 112:
        raise ValueError(f"googlenet: aux_logits needs input of at least 112x112 (the aux heads pool 5x5/3 a "
                         f"14x14 map at 224), received {tuple(inputs.shape[1:])}")
    conv = make_conv(batch_norm=torchvision_style)
    lrn = (lambda y, n: y) if torchvision_style else (
        lambda y, n: LocalResponseNormalization(5, 1e-4, 0.75, 1.0, alpha_over_size=True, name=n)(y))
    x = conv(inputs, 64, 7, strides=2, name="conv1")
    x = max_pool(x, 3, 2, ceil_mode=True, name="pool1")
    x = lrn(x, "lrn1")
    x = conv(x, 64, 1, name="conv2_reduce")
    x = conv(x, 192, 3, name="conv2")
    x = lrn(x, "lrn2")
    x = max_pool(x, 3, 2, ceil_mode=True, name="pool2")
    aux, pools = [], 3
    for module in GOOGLENET_MODULES:
        if module == "M":
            size = 2 if (torchvision_style and pools == 4) else 3  # torchvision's maxpool4 is 2x2
            x = max_pool(x, size, 2, ceil_mode=True, name=f"pool{pools}")
            pools += 1
            continue
        name, *widths = module
        x = inception_module(x, googlenet_branches(*widths, 3 if torchvision_style else 5), conv, f"inception{name}")
        if aux_logits and include_top and name in ("4a", "4d"):
            aux.append(googlenet_aux(x, num_classes, classifier_activation, torchvision_style=torchvision_style,
                                     name=f"aux{len(aux) + 1}"))
    main = classifier_head(x, include_top, pooling, num_classes, classifier_activation, dropout_name="dropout",
                           dropout=dropout if dropout is not None else (0.2 if torchvision_style else 0.4))
    if aux:
        return {"predictions": main, "aux1": aux[0], "aux2": aux[1]}
    return main


def aux_loss_weights(model):
    """``{output: weight}`` for compiling a model with auxiliary heads: 1 for ``predictions``,
    0.3 for each ``aux*`` (GoogLeNet section 5; Inception v3 uses the same)."""
    return {name: (1.0 if name == "predictions" else AUX_LOSS_WEIGHT) for name in model.output_names}


def aux_compile_args(model, loss="sparse_categorical_crossentropy"):
    """``loss`` and ``loss_weights`` for ``model.compile`` of a model with auxiliary heads::

        model.compile(optimizer, **aux_compile_args(model), metrics={"predictions": ["accuracy"]})
    """
    return {"loss": {name: loss for name in model.output_names}, "loss_weights": aux_loss_weights(model)}


def aux_targets(dataset, model):
    """Map a ``(image, label)`` dataset to ``(image, {output: label})`` for a multi-output model."""
    names = list(model.output_names)
    return dataset.map(lambda x, y: (x, {name: y for name in names}))


def inference_model(model):
    """The model without its auxiliary heads (same layers and weights, ``predictions`` only)."""
    if len(model.outputs) == 1:
        return model
    return keras.Model(model.inputs, model.get_layer("predictions").output, name=f"{model.name}_inference")


# --------------------------------------------------------------------------- BN-Inception (v2)
def bn_inception_branches(c1, r3, c3, rd, cd, pool, proj, strides=1):
    """Figure 5 row: 1x1, 3x3 reduce/3x3, double-3x3 reduce/3x3/3x3, pool (+ projection)."""
    branches = [[(c1, 1)]] if c1 else []
    branches.append([(r3, 1), (c3, 3, strides)])
    branches.append([(rd, 1), (cd, 3), (cd, 3, strides)])
    if strides == 2:
        branches.append([("max", 3, 2, 1)])
    else:
        branches.append([("avg", 3) if pool == "avg" else ("max", 3, 1, 1), (proj, 1)])
    return branches


#: Figure 5 of the BN paper: (name, #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool, proj, stride)
BN_INCEPTION_MODULES = (
    ("3a", 64, 64, 64, 64, 96, "avg", 32, 1), ("3b", 64, 64, 96, 64, 96, "avg", 64, 1),
    ("3c", 0, 128, 160, 64, 96, "max", 0, 2),
    ("4a", 224, 64, 96, 96, 128, "avg", 128, 1), ("4b", 192, 96, 128, 96, 128, "avg", 128, 1),
    ("4c", 160, 128, 160, 128, 160, "avg", 128, 1), ("4d", 96, 128, 192, 160, 192, "avg", 128, 1),
    ("4e", 0, 128, 192, 192, 256, "max", 0, 2),
    ("5a", 352, 192, 320, 160, 224, "avg", 128, 1), ("5b", 352, 192, 320, 192, 224, "max", 128, 1),
)


@register_model(
    family="inception_v2",
    paper="Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift",
    url="https://arxiv.org/abs/1502.03167", year=2015, min_input_size=32,
    variants=[Variant("inception_v2", params=11_295_240, macs=2.05e9, accuracy="top-1 74.88 / top-5 92.46",
                      follows="paper Figure 5 (BN-Inception) / Cadene bninception (conv bias kept before BN)")],
    recipe=RECIPE,
    tuner_knobs={"dropout": DROPOUT},
)
def inception_v2(*, inputs, num_classes, include_top, pooling, classifier_activation, dropout=0.0):
    """BN-Inception: GoogLeNet with BN everywhere and 5x5 convs as two 3x3 (Cadene's reference
    keeps each conv's bias before its BN: 10,016 of the 11,295,240 parameters)."""
    conv = make_conv(batch_norm=True, bn_epsilon=1e-5, use_bias=True)
    x = conv(inputs, 64, 7, strides=2, name="conv1")
    x = max_pool(x, 3, 2, ceil_mode=True, name="pool1")
    x = conv(x, 64, 1, name="conv2_reduce")
    x = conv(x, 192, 3, name="conv2")
    x = max_pool(x, 3, 2, ceil_mode=True, name="pool2")
    for name, *row in BN_INCEPTION_MODULES:
        x = inception_module(x, bn_inception_branches(*row), conv, f"inception{name}")
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation, dropout=dropout or None)


# --------------------------------------------------------------------------- Inception v3
def v3_a(pool_features):
    return ([(64, 1)], [(48, 1), (64, 5)], [(64, 1), (96, 3), (96, 3)], [("avg", 3), (pool_features, 1)])


V3_B = ([(384, 3, 2, "valid")], [(64, 1), (96, 3), (96, 3, 2, "valid")], [("max", 3, 2, 0)])


def v3_c(c7):
    return ([(192, 1)], [(c7, 1), (c7, (1, 7)), (192, (7, 1))],
            [(c7, 1), (c7, (7, 1)), (c7, (1, 7)), (c7, (7, 1)), (192, (1, 7))], [("avg", 3), (192, 1)])


V3_D = ([(192, 1), (320, 3, 2, "valid")], [(192, 1), (192, (1, 7)), (192, (7, 1)), (192, 3, 2, "valid")],
        [("max", 3, 2, 0)])
V3_E = ([(320, 1)], [(384, 1), ("fork", (384, (1, 3)), (384, (3, 1)))],
        [(448, 1), (384, 3), ("fork", (384, (1, 3)), (384, (3, 1)))], [("avg", 3), (192, 1)])
V3_MODULES = (("mixed5b", v3_a(32)), ("mixed5c", v3_a(64)), ("mixed5d", v3_a(64)), ("mixed6a", V3_B),
              ("mixed6b", v3_c(128)), ("mixed6c", v3_c(160)), ("mixed6d", v3_c(160)), ("mixed6e", v3_c(192)),
              ("mixed7a", V3_D), ("mixed7b", V3_E), ("mixed7c", V3_E))
#: Smallest input of the auxiliary head: its 5x5/3 pool and 5x5 conv need mixed6e's map at 17x17.
V3_AUX_MIN_INPUT = 299

INCEPTION_V3_CHECKPOINTS = (
    torchvision_checkpoint("inception_v3_google-0cc3c7bd.pth", crop_size=299, resize_size=342, top1=77.294,
                           **TRANSFORM_INPUT),
)
#: torchvision's inception_v3 state_dict (``torchvision.models.inception``) onto our layer names:
#: module by module, our branch ``b{n}_{i}`` (fork halves ``_a``/``_b``) to torchvision's branch names.
INCEPTION_V3_TORCHVISION_KEYS = KeyMap(
    rules=(
        (r"conv(1a|2a|2b|4a)_(conv|bn)", "Conv2d_{1}_3x3.{2}"),
        (r"conv(3b)_(conv|bn)", "Conv2d_{1}_1x1.{2}"),
        (r"mixed(5[bcd]|6[b-e]|7[bc])_b1_1_(conv|bn)", "Mixed_{1}.branch1x1.{2}"),
        (r"mixed(5[bcd]|6[b-e]|7[bc])_b4_2_(conv|bn)", "Mixed_{1}.branch_pool.{2}"),
        (r"mixed(5[bcd])_b2_(\d)_(conv|bn)", "Mixed_{1}.branch5x5_{2}.{3}"),  # InceptionA
        (r"mixed(5[bcd])_b3_(\d)_(conv|bn)", "Mixed_{1}.branch3x3dbl_{2}.{3}"),
        (r"mixed(6a)_b1_1_(conv|bn)", "Mixed_{1}.branch3x3.{2}"),  # InceptionB
        (r"mixed(6a)_b2_(\d)_(conv|bn)", "Mixed_{1}.branch3x3dbl_{2}.{3}"),
        (r"mixed(6[b-e])_b2_(\d)_(conv|bn)", "Mixed_{1}.branch7x7_{2}.{3}"),  # InceptionC
        (r"mixed(6[b-e])_b3_(\d)_(conv|bn)", "Mixed_{1}.branch7x7dbl_{2}.{3}"),
        (r"mixed(7a)_b1_(\d)_(conv|bn)", "Mixed_{1}.branch3x3_{2}.{3}"),  # InceptionD
        (r"mixed(7a)_b2_(\d)_(conv|bn)", "Mixed_{1}.branch7x7x3_{2}.{3}"),
        (r"mixed(7[bc])_b2_1_(conv|bn)", "Mixed_{1}.branch3x3_1.{2}"),  # InceptionE
        (r"mixed(7[bc])_b2_2_([ab])_(conv|bn)", "Mixed_{1}.branch3x3_2{2}.{3}"),
        (r"mixed(7[bc])_b3_([12])_(conv|bn)", "Mixed_{1}.branch3x3dbl_{2}.{3}"),
        (r"mixed(7[bc])_b3_3_([ab])_(conv|bn)", "Mixed_{1}.branch3x3dbl_3{2}.{3}"),
        (r"aux1_conv([01])_(conv|bn)", "AuxLogits.conv{1}.{2}"),
        (r"aux1", "AuxLogits.fc"),
        (r"predictions", "fc"),
    ),
    head=("fc", "AuxLogits.fc"),
    ignore=(r".*\.num_batches_tracked", r"AuxLogits\..*"),
)


@register_model(
    family="inception_v3", paper="Rethinking the Inception Architecture for Computer Vision",
    url="https://arxiv.org/abs/1512.00567", year=2016, input_shape=(299, 299, 3), min_input_size=75,
    variants=[Variant("inception_v3", params=23_834_568, macs=5.71e9, accuracy="top-1 77.87 / top-5 93.64",
                      follows="paper Table 1 / torchvision inception_v3",
                      notes="aux_logits=True adds the auxiliary head after mixed6e: 27,161,264 params",
                      keras_applications=("InceptionV3", {}), checkpoints=INCEPTION_V3_CHECKPOINTS)],
    recipe=RECIPE,
    tuner_knobs={"dropout": DROPOUT},
    key_maps={"torchvision": INCEPTION_V3_TORCHVISION_KEYS},
)
def inception_v3(*, inputs, num_classes, include_top, pooling, classifier_activation, aux_logits=False,
                 dropout=0.5):
    """Inception v3 (factorized 7x7, expanded filter banks). ``aux_logits`` adds the auxiliary
    classifier as output ``aux1`` (loss weight 0.3; needs input >= 299, as torchvision's)."""
    if aux_logits and include_top and min(inputs.shape[1:3]) < V3_AUX_MIN_INPUT:
        raise ValueError(f"inception_v3: aux_logits needs input of at least {V3_AUX_MIN_INPUT}x{V3_AUX_MIN_INPUT} "
                         f"(its 5x5/3 pool and 5x5 conv read mixed6e's map), received {tuple(inputs.shape[1:])}")
    conv = make_conv(batch_norm=True)
    x = conv(inputs, 32, 3, strides=2, padding="valid", name="conv1a")
    x = conv(x, 32, 3, padding="valid", name="conv2a")
    x = conv(x, 64, 3, name="conv2b")
    x = max_pool(x, 3, 2, name="pool1")
    x = conv(x, 80, 1, name="conv3b")
    x = conv(x, 192, 3, padding="valid", name="conv4a")
    x = max_pool(x, 3, 2, name="pool2")
    aux = None
    for name, branches in V3_MODULES:
        x = inception_module(x, branches, conv, name)
        if name == "mixed6e" and aux_logits and include_top:
            a = layers.AveragePooling2D(5, 3, name="aux1_pool")(x)
            a = conv(a, 128, 1, name="aux1_conv0")
            a = conv(a, 768, 5, padding="valid", name="aux1_conv1")
            a = layers.GlobalAveragePooling2D(name="aux1_gap")(a)
            aux = predictions(a, num_classes, classifier_activation, name="aux1")
    main = classifier_head(x, include_top, pooling, num_classes, classifier_activation, dropout=dropout,
                           dropout_name="dropout")
    return {"predictions": main, "aux1": aux} if aux is not None else main
