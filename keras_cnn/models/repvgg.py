"""RepVGG: a VGG-style body of RepVGG blocks that fuses into plain 3x3 convs for deployment.

Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021,
https://arxiv.org/abs/2101.03697 (Table 2; reference code github.com/DingXiaoH/RepVGG).

Stages: a stride-2 stem block of ``min(64, 64a)`` channels, then stages of
A = (2, 4, 14, 1) / B = (4, 6, 16, 1) blocks at widths 64a, 128a, 256a, 512b, each starting
with stride 2; groups ``g`` on layers 2, 4, 6, ... of the body (the stem is layer 0).
``keras_cnn.reparameterize(model)`` (or ``build(name, deploy=True)``) gives the fused net.

Example:
    >>> import keras_cnn
    >>> train = keras_cnn.build("repvgg_a0", num_classes=10, input_shape=(64, 64, 3))
    >>> deploy = keras_cnn.reparameterize(train)
"""


from keras_cnn.blocks import check_positive_int, pooled_head
from keras_cnn.layers.repvgg import RepVGGBlock
from keras_cnn.models.spec import Variant, register_model

DEPTHS = {"A": (2, 4, 14, 1), "B": (4, 6, 16, 1)}

# name: (depth, a, b, groups, train params, deploy params, deploy MACs, paper top-1)
REPVGG_VARIANTS = {
    "a0": ("A", 0.75, 2.5, 1, 9_108_968, 8_309_384, 1.361e9, 72.41),
    "a1": ("A", 1.0, 2.5, 1, 14_092_264, 12_789_864, 2.364e9, 74.46),
    "a2": ("A", 1.5, 2.75, 1, 28_210_600, 25_499_944, 5.117e9, 76.48),
    "b0": ("B", 1.0, 2.5, 1, 15_817_960, 14_339_048, 3.058e9, 75.14),
    "b1": ("B", 2.0, 4.0, 1, 57_415_016, 51_829_480, 11.815e9, 78.37),
    "b1g2": ("B", 2.0, 4.0, 2, 45_782_376, 41_360_104, 8.810e9, 77.78),
    "b1g4": ("B", 2.0, 4.0, 4, 39_966_056, 36_125_416, 7.307e9, 77.58),
    "b2": ("B", 2.5, 5.0, 1, 89_022_376, 80_315_112, 18.377e9, 78.78),
    "b2g4": ("B", 2.5, 5.0, 4, 61_758_376, 55_777_512, 11.332e9, 78.50),
    "b3": ("B", 3.0, 5.0, 1, 123_085_288, 110_960_872, 26.209e9, 80.52),
    "b3g4": ("B", 3.0, 5.0, 4, 83_825_128, 75_626_728, 16.064e9, 80.21),
}

#: deploy-time reference params, for tests of reparameterize() and build(deploy=True).
DEPLOY_PARAMS = {f"repvgg_{k}": v[5] for k, v in REPVGG_VARIANTS.items()}


@register_model(
    family="repvgg",
    paper="RepVGG: Making VGG-style ConvNets Great Again",
    url="https://arxiv.org/abs/2101.03697", year=2021,
    follows="paper Table 2 / DingXiaoH/RepVGG",
    variants=[
        Variant(f"repvgg_{key}", {"depth": d, "width_a": a, "width_b": b, "groups": g},
                params=train, macs=macs, accuracy=f"top-1 {top1} (paper)",
                notes=f"deploy (fused) params {deploy:,}; reference MACs are for the deployed net")
        for key, (d, a, b, g, train, deploy, macs, top1) in REPVGG_VARIANTS.items()
    ],
)
def repvgg(*, inputs, num_classes, include_top, pooling, classifier_activation, depth="A",
           width_a=0.75, width_b=2.5, groups=1, deploy=False):
    """RepVGG with stage widths ``64a, 128a, 256a, 512b`` and grouped convs on even layers.

    Args:
        depth: ``"A"`` (2, 4, 14, 1 blocks) or ``"B"`` (4, 6, 16, 1).
        width_a, width_b: the paper's width multipliers a and b.
        groups: groups of the 3x3/1x1 convs on layers 2, 4, 6, ... (1, 2 or 4 in the paper).
        deploy: build the fused inference form (one 3x3 conv with bias per block).
    """
    if depth not in DEPTHS:
        raise ValueError(f"repvgg: depth must be one of {list(DEPTHS)}, received {depth!r}")
    check_positive_int(groups, "groups", "repvgg")
    widths = (int(64 * width_a), int(128 * width_a), int(256 * width_a), int(512 * width_b))
    for w in widths:
        if w % groups:
            raise ValueError(f"repvgg: stage width {w} is not divisible by groups={groups}; "
                             f"allowed groups divide every width {widths}")
    x = RepVGGBlock(min(64, int(64 * width_a)), strides=2, deploy=deploy, name="stem")(inputs)
    layer_index = 1
    for stage, (blocks, width) in enumerate(zip(DEPTHS[depth], widths), start=1):
        for i in range(blocks):
            g = groups if layer_index % 2 == 0 else 1
            x = RepVGGBlock(width, strides=2 if i == 0 else 1, groups=g, deploy=deploy,
                            name=f"stage{stage}_block{i + 1}")(x)
            layer_index += 1
    return pooled_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                       classifier_activation=classifier_activation)
