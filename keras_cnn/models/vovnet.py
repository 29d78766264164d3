"""VoVNet-39 / 57: one-shot aggregation (OSA) modules.

Lee et al., "An Energy and GPU-Computation Efficient Backbone Network for Real-Time Object
Detection", CVPRW 2019, https://arxiv.org/abs/1904.09730 (Table 1; timm vovnet39a/57a).
An OSA module runs five 3x3 conv-BN-ReLU in sequence and concatenates the input with all five
outputs once, then a 1x1 conv aggregates them.

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("vovnet39", num_classes=10).output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import classifier_head, conv_bn_act, max_pool
from keras_cnn.models.spec import BOOL, Variant, register_model

STAGE_CONV = (128, 160, 192, 224)
STAGE_OUT = (256, 512, 768, 1024)


def osa_module(x, conv_channels, out_channels, layers_per_block=5, *, residual=False, name):
    """One-shot aggregation: sequential 3x3 convs, one concat of input and every output, 1x1."""
    outputs = [x]
    y = x
    for i in range(layers_per_block):
        y = conv_bn_act(y, conv_channels, 3, name=f"{name}_conv{i + 1}")
        outputs.append(y)
    y = layers.Concatenate(name=f"{name}_concat")(outputs)
    y = conv_bn_act(y, out_channels, 1, name=f"{name}_aggregate")
    if residual and x.shape[-1] == out_channels:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


@register_model(
    family="vovnet",
    paper="An Energy and GPU-Computation Efficient Backbone Network for Real-Time Object Detection",
    url="https://arxiv.org/abs/1904.09730", year=2019,
    follows="paper Table 1 / timm vovnet39a, vovnet57a (stem 64-64-128, ceil-mode pools)",
    variants=[
        Variant("vovnet39", {"blocks_per_stage": (1, 1, 2, 2)}, params=22_600_296, macs=7.09e9,
                accuracy="top-1 error 23.23"),
        Variant("vovnet57", {"blocks_per_stage": (1, 1, 4, 3)}, params=36_640_296, macs=8.94e9,
                accuracy="top-1 error 22.27"),
    ],
    tuner_knobs={"residual": BOOL},
)
def vovnet(*, inputs, num_classes, include_top, pooling, classifier_activation, blocks_per_stage=(1, 1, 2, 2),
           layers_per_block=5, residual=False):
    """VoVNet v1. ``residual=True`` adds VoVNet-v2's identity shortcut to OSA modules (not in v1)."""
    x = conv_bn_act(inputs, 64, 3, strides=2, name="stem1")
    x = conv_bn_act(x, 64, 3, name="stem2")
    x = conv_bn_act(x, 128, 3, strides=2, name="stem3")
    for stage, (blocks, conv_ch, out_ch) in enumerate(zip(blocks_per_stage, STAGE_CONV, STAGE_OUT), start=2):
        if stage > 2:
            x = max_pool(x, 3, 2, ceil_mode=True, name=f"stage{stage}_pool")
        for i in range(blocks):
            x = osa_module(x, conv_ch, out_ch, layers_per_block, residual=residual and i > 0,
                           name=f"stage{stage}_osa{i + 1}")
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)
