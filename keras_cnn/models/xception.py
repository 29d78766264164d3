"""Xception: depthwise-separable convolutions with residual connections.

Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017,
https://arxiv.org/abs/1610.02357 (Figure 5; keras.applications.Xception, the reference whose
weights people use, including its TensorFlow "same" padding and BN epsilon 1e-3).

Trained weights: timm's ``legacy_xception.tf_in1k`` (Cadene's PyTorch port of the Keras weights)
runs the same layers with PyTorch's conventions: BN epsilon 1e-5 and the downsampling max-pools
padded by one pixel on every side (TensorFlow's "same" pads only the bottom/right on even sizes).
Its checkpoint row builds the net with ``bn_epsilon=1e-5, pool_padding="symmetric"``, the layout
:data:`TIMM_KEYS` reads; the default stays keras.applications'.

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("xception", num_classes=10).output_shape
    (None, 10)
"""

import dataclasses

from keras import layers

from keras_cnn.blocks import batch_norm, check_choice, check_range, classifier_head, max_pool
from keras_cnn.models.spec import FeatureLevels, KeyMap, Variant, choice, register_model, timm_checkpoint

EPS = 1e-3
POOL_PADDINGS = ("same", "symmetric")


def separable_bn(x, filters, name, relu_first=True, epsilon=EPS):
    """(ReLU) - SeparableConv 3x3 (no bias) - BN."""
    if relu_first:
        x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv")(x)
    return batch_norm(x, name=f"{name}_bn", epsilon=epsilon)


def downsampling_block(x, filters, name, relu_first=True, epsilon=EPS, pool_padding="same"):
    """Two separable convs and a 3x3/2 max-pool, plus a strided 1x1 projection shortcut."""
    first, second = filters if isinstance(filters, tuple) else (filters, filters)
    residual = layers.Conv2D(second, 1, strides=2, padding="same", use_bias=False, name=f"{name}_proj")(x)
    residual = batch_norm(residual, name=f"{name}_proj_bn", epsilon=epsilon)
    x = separable_bn(x, first, f"{name}_sep1", relu_first=relu_first, epsilon=epsilon)
    x = separable_bn(x, second, f"{name}_sep2", epsilon=epsilon)
    if pool_padding == "same":
        x = layers.MaxPooling2D(3, 2, padding="same", name=f"{name}_pool")(x)
    else:  # PyTorch's MaxPool2d(3, 2, padding=1); the pool reads a BN output, so the padding is -inf
        x = max_pool(x, 3, 2, padding=1, pad_value=float("-inf"), name=f"{name}_pool")
    return layers.Add(name=f"{name}_add")([x, residual])


#: timm's legacy_xception checkpoint (``timm.models.get_pretrained_cfg``), hosted on timm's GitHub
#: releases rather than the Hugging Face hub, hence the URL replaced; it needs PyTorch's conventions.
TIMM_CHECKPOINTS = (
    dataclasses.replace(
        timm_checkpoint("legacy_xception.tf_in1k", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_size=299,
                        crop_pct=0.8975, interpolation="bicubic",
                        options={"bn_epsilon": 1e-5, "pool_padding": "symmetric"}),
        url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-cadene/xception-43020ad28.pth"),
)
#: timm's legacy_xception state_dict (``timm.models.xception``) onto our layer names: ``block1``-``block3``
#: the entry flow, ``block4``-``block11`` the middle flow, ``block12`` the exit block; inside a block,
#: ``rep`` interleaves ReLU, separable conv and BN (block1 has no leading ReLU).
TIMM_KEYS = KeyMap(
    rules=(
        (r"entry_conv([12])", "conv{1}"),
        (r"entry_conv([12])_bn", "bn{1}"),
        (r"entry_block1_sep1_sepconv", "block1.rep.0"),
        (r"entry_block1_sep1_bn", "block1.rep.1"),
        (r"entry_block1_sep2_sepconv", "block1.rep.3"),
        (r"entry_block1_sep2_bn", "block1.rep.4"),
        (r"entry_block([23])_sep1_sepconv", "block{1}.rep.1"),
        (r"entry_block([23])_sep1_bn", "block{1}.rep.2"),
        (r"entry_block([23])_sep2_sepconv", "block{1}.rep.4"),
        (r"entry_block([23])_sep2_bn", "block{1}.rep.5"),
        (r"entry_block(\d)_proj", "block{1}.skip"),
        (r"entry_block(\d)_proj_bn", "block{1}.skipbn"),
        *((f"middle{i}_sep{j}_sepconv", f"block{i + 3}.rep.{3 * j - 2}") for i in range(1, 9) for j in (1, 2, 3)),
        *((f"middle{i}_sep{j}_bn", f"block{i + 3}.rep.{3 * j - 1}") for i in range(1, 9) for j in (1, 2, 3)),
        (r"exit_block_sep1_sepconv", "block12.rep.1"),
        (r"exit_block_sep1_bn", "block12.rep.2"),
        (r"exit_block_sep2_sepconv", "block12.rep.4"),
        (r"exit_block_sep2_bn", "block12.rep.5"),
        (r"exit_block_proj", "block12.skip"),
        (r"exit_block_proj_bn", "block12.skipbn"),
        (r"exit_sep1_sepconv", "conv3"),
        (r"exit_sep1_bn", "bn3"),
        (r"exit_sep2_sepconv", "conv4"),
        (r"exit_sep2_bn", "bn4"),
        (r"predictions", "fc"),
    ),
    head=("fc",),
    separable=("conv1", "pointwise"),  # timm's legacy SeparableConv2d
)


@register_model(
    family="xception", paper="Xception: Deep Learning with Depthwise Separable Convolutions",
    url="https://arxiv.org/abs/1610.02357", year=2017, input_shape=(299, 299, 3), min_input_size=71,
    variants=[Variant("xception", params=22_855_952, macs=8.40e9, accuracy="top-1 79.0 / top-5 94.5",
                      follows="paper Figure 5 / keras.applications.Xception",
                      keras_applications=("Xception", {}), checkpoints=TIMM_CHECKPOINTS)],
    tuner_knobs={"middle_blocks": choice(4, 8)},
    key_maps={"timm": TIMM_KEYS},
    features=FeatureLevels(candidates=r"entry_conv2_relu|entry_block\d+_sep1_relu|exit_block_sep1_relu|exit_sep2_out",
                           follows="timm feature_info (legacy_xception): the ReLU that opens the next block "
                                   "(block2.rep.0, block3.rep.0, block12.rep.0), not the block's sum"),
)
def xception(*, inputs, num_classes, include_top, pooling, classifier_activation, middle_blocks=8,
             bn_epsilon=EPS, pool_padding="same"):
    """Xception: entry flow, ``middle_blocks`` (8) residual middle-flow blocks, exit flow.

    Args:
        middle_blocks: residual blocks of the middle flow (8 in the paper).
        bn_epsilon: BatchNorm epsilon: 1e-3 (Keras, the default) or 1e-5 (PyTorch, timm's checkpoint).
        pool_padding: the downsampling max-pools' padding: ``"same"`` (TensorFlow, keras.applications)
            or ``"symmetric"`` (one pixel on every side, PyTorch's, timm's ``legacy_xception``). They
            differ only where the pooled map has an even size.
    """
    if not isinstance(middle_blocks, int) or middle_blocks < 0:
        raise ValueError(f"xception: middle_blocks must be a non-negative integer, received {middle_blocks!r}")
    check_choice(pool_padding, POOL_PADDINGS, "pool_padding", "xception")
    check_range(bn_epsilon, 0.0, 1.0, "bn_epsilon", "xception")
    eps = dict(epsilon=bn_epsilon)
    down = dict(epsilon=bn_epsilon, pool_padding=pool_padding)
    x = layers.Conv2D(32, 3, strides=2, use_bias=False, name="entry_conv1")(inputs)
    x = layers.ReLU(name="entry_conv1_relu")(batch_norm(x, name="entry_conv1_bn", **eps))
    x = layers.Conv2D(64, 3, use_bias=False, name="entry_conv2")(x)
    x = layers.ReLU(name="entry_conv2_relu")(batch_norm(x, name="entry_conv2_bn", **eps))
    x = downsampling_block(x, 128, "entry_block1", relu_first=False, **down)
    x = downsampling_block(x, 256, "entry_block2", **down)
    x = downsampling_block(x, 728, "entry_block3", **down)
    for i in range(middle_blocks):
        y = x
        for j in range(3):
            y = separable_bn(y, 728, f"middle{i + 1}_sep{j + 1}", **eps)
        x = layers.Add(name=f"middle{i + 1}_add")([x, y])
    x = downsampling_block(x, (728, 1024), "exit_block", **down)
    x = separable_bn(x, 1536, "exit_sep1", relu_first=False, **eps)
    x = layers.ReLU(name="exit_sep1_out")(x)
    x = separable_bn(x, 2048, "exit_sep2", relu_first=False, **eps)
    x = layers.ReLU(name="exit_sep2_out")(x)
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)
