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

from typing import NamedTuple

from keras_cnn.blocks import check_positive_int, classifier_head
from keras_cnn.layers.repvgg import RepVGGBlock
from keras_cnn.models.spec import KeyMap, Variant, register_model, timm_checkpoint

DEPTHS = {"A": (2, 4, 14, 1), "B": (4, 6, 16, 1)}


class RepVGGRow(NamedTuple):
    """One registered RepVGG (``repvgg_<key>``): its :func:`repvgg` options and the paper's numbers."""

    config: dict  # builder options (depth, width_a, width_b, groups), exactly the Variant's config
    params: int  # training-time (multi-branch) trainable parameters
    deploy_params: int  # parameters of the fused (deployed) net
    deploy_macs: float  # MACs of the fused net, as the paper counts them
    top1: float  # paper ImageNet top-1


REPVGG_VARIANTS = {
    "a0": RepVGGRow(config=dict(depth="A", width_a=0.75, width_b=2.5, groups=1),
                    params=9_108_968, deploy_params=8_309_384, deploy_macs=1.361e9, top1=72.41),
    "a1": RepVGGRow(config=dict(depth="A", width_a=1.0, width_b=2.5, groups=1),
                    params=14_092_264, deploy_params=12_789_864, deploy_macs=2.364e9, top1=74.46),
    "a2": RepVGGRow(config=dict(depth="A", width_a=1.5, width_b=2.75, groups=1),
                    params=28_210_600, deploy_params=25_499_944, deploy_macs=5.117e9, top1=76.48),
    "b0": RepVGGRow(config=dict(depth="B", width_a=1.0, width_b=2.5, groups=1),
                    params=15_817_960, deploy_params=14_339_048, deploy_macs=3.058e9, top1=75.14),
    "b1": RepVGGRow(config=dict(depth="B", width_a=2.0, width_b=4.0, groups=1),
                    params=57_415_016, deploy_params=51_829_480, deploy_macs=11.815e9, top1=78.37),
    "b1g2": RepVGGRow(config=dict(depth="B", width_a=2.0, width_b=4.0, groups=2),
                      params=45_782_376, deploy_params=41_360_104, deploy_macs=8.810e9, top1=77.78),
    "b1g4": RepVGGRow(config=dict(depth="B", width_a=2.0, width_b=4.0, groups=4),
                      params=39_966_056, deploy_params=36_125_416, deploy_macs=7.307e9, top1=77.58),
    "b2": RepVGGRow(config=dict(depth="B", width_a=2.5, width_b=5.0, groups=1),
                    params=89_022_376, deploy_params=80_315_112, deploy_macs=18.377e9, top1=78.78),
    "b2g4": RepVGGRow(config=dict(depth="B", width_a=2.5, width_b=5.0, groups=4),
                      params=61_758_376, deploy_params=55_777_512, deploy_macs=11.332e9, top1=78.50),
    "b3": RepVGGRow(config=dict(depth="B", width_a=3.0, width_b=5.0, groups=1),
                    params=123_085_288, deploy_params=110_960_872, deploy_macs=26.209e9, top1=80.52),
    "b3g4": RepVGGRow(config=dict(depth="B", width_a=3.0, width_b=5.0, groups=4),
                      params=83_825_128, deploy_params=75_626_728, deploy_macs=16.064e9, top1=80.21),
}

#: deploy-time reference params, for tests of reparameterize() and build(deploy=True).
DEPLOY_PARAMS = {f"repvgg_{key}": row.deploy_params for key, row in REPVGG_VARIANTS.items()}

#: timm's checkpoints (``timm.models.get_pretrained_cfg``; DingXiaoH's train-time weights, every
#: variant but b1g2), loaded in the train-time form: ``keras_cnn.reparameterize`` fuses them.
TIMM_CHECKPOINTS = {
    f"repvgg_{key}": (timm_checkpoint(f"repvgg_{key}.rvgg_in1k", interpolation="bilinear"),)
    for key in ("a0", "a1", "a2", "b0", "b1", "b1g4", "b2", "b2g4", "b3", "b3g4")
}
#: Our RepVGGBlock's sublayers -> timm's ``RepVggBlock`` modules (``reparam_conv``: its fused form).
TIMM_BRANCHES = {"conv3x3": "conv_kxk.conv", "bn3x3": "conv_kxk.bn", "conv1x1": "conv_1x1.conv",
                 "bn1x1": "conv_1x1.bn", "bn_identity": "identity", "fused": "reparam_conv"}
#: timm's ``byobnet.py`` RepVGG state_dict (``stem``, ``stages.S.B``, ``head.fc``) onto our layer names.
TIMM_KEYS = KeyMap(
    rules=(
        *((rf"stem/{ours}", f"stem.{theirs}") for ours, theirs in TIMM_BRANCHES.items()),
        *((rf"stage(\d+)_block(\d+)/{ours}", f"stages.{{1-1}}.{{2-1}}.{theirs}")
          for ours, theirs in TIMM_BRANCHES.items()),
        (r"predictions", "head.fc"),
    ),
    head=("head.fc",),
)


@register_model(
    family="repvgg",
    paper="RepVGG: Making VGG-style ConvNets Great Again",
    url="https://arxiv.org/abs/2101.03697", year=2021,
    follows="paper Table 2 / DingXiaoH/RepVGG",
    variants=[
        Variant(f"repvgg_{key}", row.config,
                params=row.params, macs=row.deploy_macs, accuracy=f"top-1 {row.top1} (paper)",
                notes=f"deploy (fused) params {row.deploy_params:,}; reference MACs are for the deployed net",
                checkpoints=TIMM_CHECKPOINTS.get(f"repvgg_{key}", ()))
        for key, row in REPVGG_VARIANTS.items()
    ],
    deployed_macs=True,
    key_maps={"timm": TIMM_KEYS},
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
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)
