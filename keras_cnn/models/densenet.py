"""DenseNet and DenseNet-BC.

Huang et al., "Densely Connected Convolutional Networks", CVPR 2017,
https://arxiv.org/abs/1608.06993 (Table 1; torchvision densenet). Each dense layer is
BN-ReLU-Conv1x1(bn_size * k)-BN-ReLU-Conv3x3(k) concatenated to its input; transitions are
BN-ReLU-Conv1x1(compression * c)-AvgPool 2/2. ``densenet_bc_100_k12`` is the paper's CIFAR
DenseNet-BC (depth 100, k=12; the "DenseNet-BC 768K" of the Fashion-MNIST benchmark).

The four ImageNet nets load torchvision's checkpoints (``weights="torchvision"``) through
:data:`TORCHVISION_KEYS`; torchvision's published files still carry the old key names
(``denselayer1.norm.1.weight`` for ``norm1``), which the map's aliases rename as torchvision does.

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("densenet121", num_classes=10).output_shape
    (None, 10)
    >>> bc = keras_cnn.build("densenet_bc_100_k12")            # CIFAR DenseNet-BC, one call
    >>> custom = keras_cnn.build("densenet121", growth_rate=12, block_config=(16, 16, 16),
    ...                          num_init_features=24, stem="cifar", input_shape=(32, 32, 3))
"""

from typing import NamedTuple

from keras import layers

from keras_cnn.blocks import (
    batch_norm,
    check_choice,
    check_range,
    classifier_head,
    max_pool,
    symmetric_conv,
)
from keras_cnn.models.spec import DROPOUT, FeatureLevels, KeyMap, Variant, register_model, torchvision_checkpoint


def bn_relu(x, name):
    return layers.ReLU(name=f"{name}_relu")(batch_norm(x, name=f"{name}_bn"))


def dense_layer(x, growth_rate, bn_size, *, dropout=0.0, name):
    """BN-ReLU-1x1 (bottleneck, skipped when ``bn_size`` is 0) - BN-ReLU-3x3, concatenated."""
    y = x
    if bn_size:
        y = symmetric_conv(bn_relu(y, f"{name}_1"), bn_size * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")
    y = symmetric_conv(bn_relu(y, f"{name}_2"), growth_rate, 3, use_bias=False, name=f"{name}_2_conv")
    if dropout:
        y = layers.Dropout(dropout, name=f"{name}_dropout")(y)
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def transition(x, compression, name):
    """BN-ReLU-1x1 conv to ``compression`` of the channels, then 2x2 average pooling."""
    x = symmetric_conv(bn_relu(x, name), int(x.shape[-1] * compression), 1, use_bias=False, name=f"{name}_conv")
    return layers.AveragePooling2D(2, 2, name=f"{name}_pool")(x)


class DenseNetRow(NamedTuple):
    """One ImageNet DenseNet of Table 1: its :func:`densenet` options and torchvision's numbers."""

    config: dict  # builder options (growth_rate, block_config, num_init_features), exactly the Variant's config
    params: int  # reference trainable parameters
    macs: float  # reference multiply-adds at 224x224
    top1: str  # torchvision ImageNet top-1


VARIANTS = {
    "densenet121": DenseNetRow(config=dict(growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64),
                               params=7_978_856, macs=2.83e9, top1="74.43"),
    "densenet161": DenseNetRow(config=dict(growth_rate=48, block_config=(6, 12, 36, 24), num_init_features=96),
                               params=28_681_000, macs=7.73e9, top1="77.14"),
    "densenet169": DenseNetRow(config=dict(growth_rate=32, block_config=(6, 12, 32, 32), num_init_features=64),
                               params=14_149_480, macs=3.36e9, top1="75.60"),
    "densenet201": DenseNetRow(config=dict(growth_rate=32, block_config=(6, 12, 48, 32), num_init_features=64),
                               params=20_013_928, macs=4.29e9, top1="76.90"),
}

TORCHVISION_CHECKPOINTS = {
    "densenet121": (torchvision_checkpoint("densenet121-a639ec97.pth", top1=74.434),),
    "densenet161": (torchvision_checkpoint("densenet161-8d451a50.pth", top1=77.138),),
    "densenet169": (torchvision_checkpoint("densenet169-b2777c0a.pth", top1=75.6),),
    "densenet201": (torchvision_checkpoint("densenet201-c1103571.pth", top1=76.896),),
}
#: torchvision's DenseNet state_dict (``torchvision.models.densenet``) onto our layer names. The
#: alias is torchvision's own ``_load_state_dict`` regex: its published files say
#: ``denselayer1.norm.1.weight`` where the module now has ``denselayer1.norm1.weight``.
TORCHVISION_KEYS = KeyMap(
    rules=(
        (r"stem_conv", "features.conv0"),
        (r"stem_bn", "features.norm0"),
        (r"block(\d+)_layer(\d+)_([12])_conv", "features.denseblock{1}.denselayer{2}.conv{3}"),
        (r"block(\d+)_layer(\d+)_([12])_bn", "features.denseblock{1}.denselayer{2}.norm{3}"),
        (r"transition(\d+)_conv", "features.transition{1}.conv"),
        (r"transition(\d+)_bn", "features.transition{1}.norm"),
        (r"final_bn", "features.norm5"),
        (r"predictions", "classifier"),
    ),
    head=("classifier",),
    aliases=((r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$",
              r"\1\2"),),
)


#: timm's ``feature_info`` (densenet121): the stem's BN-ReLU, each dense block's output (its last
#: concatenation, before the transition that halves the channels), the final BN-ReLU
FEATURES = FeatureLevels(candidates=r"stem_relu|block\d+_layer\d+_concat|final_relu",
                         follows="timm feature_info (densenet121); the CIFAR net: its dense blocks' outputs")


@register_model(
    family="densenet",
    paper="Densely Connected Convolutional Networks",
    url="https://arxiv.org/abs/1608.06993", year=2017,
    follows="paper Table 1 / torchvision densenet",
    variants=[Variant(name, row.config, params=row.params, macs=row.macs, accuracy=f"top-1 {row.top1}",
                      keras_applications=("DenseNet121", {}) if name == "densenet121" else None,
                      checkpoints=TORCHVISION_CHECKPOINTS.get(name, ()))
              for name, row in VARIANTS.items()]
    + [Variant("densenet_bc_100_k12",
               {"growth_rate": 12, "block_config": (16, 16, 16), "num_init_features": 24, "stem": "cifar"},
               params=769_162, input_shape=(32, 32, 3), num_classes=10, accuracy="CIFAR-10 error 4.51% (+)",
               min_input_size=8,  # 3x3 stride-1 stem and two 2x2 pooling transitions: 8 -> 4 -> 2
               follows="paper section 3 / Table 2 (DenseNet-BC, L=100, k=12)",
               notes="count derived from the definition [C]; the paper prints 0.8M, the Fashion-MNIST "
                     "benchmark 768K (it counts the 1-channel stem)")],
    tuner_knobs={"dropout": DROPOUT},
    key_maps={"torchvision": TORCHVISION_KEYS},
    features=FEATURES,
)
def densenet(*, inputs, num_classes, include_top, pooling, classifier_activation, growth_rate=32,
             block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4, compression=0.5, stem="imagenet",
             dropout=0.0):
    """DenseNet(-BC).

    Args:
        growth_rate: k, channels each dense layer adds.
        block_config: dense layers per block (DenseNet-BC for CIFAR with depth L: three blocks
            of (L - 4) / 6).
        num_init_features: stem width (2k for the CIFAR DenseNet-BC).
        bn_size: bottleneck width factor (4 = the "B" of BC; 0 = no bottleneck).
        compression: transition compression theta (0.5 = the "C" of BC; 1.0 = none).
        stem: ``"imagenet"`` (7x7/2 conv, BN-ReLU, 3x3/2 max-pool) or ``"cifar"`` (one 3x3 conv).
        dropout: dropout after each dense layer's 3x3 conv.
    """
    check_choice(stem, ("imagenet", "cifar"), "stem", "densenet")
    check_range(compression, 0.01, 1.0, "compression", "densenet")
    if not isinstance(growth_rate, int) or growth_rate < 1:
        raise ValueError(f"densenet: growth_rate must be a positive integer, received {growth_rate!r}")
    if not block_config or any(not isinstance(n, int) or n < 1 for n in block_config):
        raise ValueError(f"densenet: block_config must be positive layer counts, received {block_config!r}")
    if stem == "imagenet":
        x = symmetric_conv(inputs, num_init_features, 7, strides=2, use_bias=False, name="stem_conv")
        x = bn_relu(x, "stem")
        x = max_pool(x, 3, 2, padding=1, name="stem_pool")
    else:
        x = symmetric_conv(inputs, num_init_features, 3, use_bias=False, name="stem_conv")
    for block, layers_in_block in enumerate(block_config, start=1):
        for i in range(layers_in_block):
            x = dense_layer(x, growth_rate, bn_size, dropout=dropout, name=f"block{block}_layer{i + 1}")
        if block != len(block_config):
            x = transition(x, compression, name=f"transition{block}")
    x = bn_relu(x, "final")
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)
