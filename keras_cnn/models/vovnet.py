"""VoVNet-39 / 57 (v1) and VoVNet-v2 (ESE-VoVNet): one-shot aggregation (OSA) modules.

- v1: Lee et al., "An Energy and GPU-Computation Efficient Backbone Network for Real-Time Object
  Detection", CVPRW 2019, https://arxiv.org/abs/1904.09730 (Table 1; timm vovnet39a/57a).
- v2: Lee and Park, "CenterMask: Real-Time Anchor-Free Instance Segmentation", CVPR 2020,
  https://arxiv.org/abs/1911.06667 (section 3.1: VoVNetV2 adds an identity mapping to the OSA
  modules after a stage's first and effective squeeze-excitation, eSE, to each stage's last one;
  timm ese_vovnet19b_dw/39b/57b, whose trained weights load with ``weights="timm"``).

An OSA module runs five (v2 "19": three) 3x3 conv-BN-ReLU in sequence and concatenates the input
with all their outputs once, then a 1x1 conv aggregates them. eSE is one 1x1 conv (with bias) on
the globally averaged map, a hard sigmoid (``relu6(x + 3) / 6``, timm's default gate) and a
channel-wise product. The depthwise variant (ese_vovnet19b_dw) replaces the stem's second and third
convs and every OSA conv by a depthwise 3x3 and a pointwise 1x1 (then BN-ReLU), and reduces an OSA
module's input to the module's width with a 1x1 conv-BN-ReLU first (the concatenation still takes the
unreduced input).

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("vovnet39", num_classes=10).output_shape
    (None, 10)
    >>> keras_cnn.build("ese_vovnet19b_dw", num_classes=10).output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import (
    batch_norm,
    check_choice,
    classifier_head,
    conv_bn_act,
    max_pool,
    symmetric_conv,
    symmetric_conv_dw,
)
from keras_cnn.models.spec import BOOL, KeyMap, Variant, register_model, timm_checkpoint

STAGE_CONV = (128, 160, 192, 224)
STAGE_OUT = (256, 512, 768, 1024)
ATTENTIONS = ("", "ese")


def separable_conv_bn_act(x, filters, strides=1, *, name):
    """Depthwise 3x3 (``{name}_dw``), pointwise 1x1 (``{name}_pw``), BN, ReLU: timm's ``SeparableConvNormAct``."""
    x = symmetric_conv_dw(x, strides, name=f"{name}_dw")
    x = symmetric_conv(x, filters, 1, use_bias=False, name=f"{name}_pw")
    x = batch_norm(x, name=f"{name}_bn")
    return layers.ReLU(name=f"{name}_act")(x)


def effective_se(x, *, name):
    """eSE (CenterMask section 3.1): ``x * hard_sigmoid(conv1x1(mean(x)))``, one conv with bias (``{name}_fc``)."""
    channels = x.shape[-1]
    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    gate = layers.Conv2D(channels, 1, use_bias=True, name=f"{name}_fc")(gate)
    gate = layers.Activation("hard_sigmoid", name=f"{name}_gate")(gate)
    return layers.Multiply(name=f"{name}_scale")([x, gate])


def osa_module(x, conv_channels, out_channels, layers_per_block=5, *, residual=False, attention="", depthwise=False,
               name):
    """One-shot aggregation: sequential 3x3 convs, one concat of input and every output, 1x1; then eSE
    (``attention="ese"``) and the identity shortcut (``residual``, where the shapes agree)."""
    outputs = [x]
    y = x
    if depthwise and x.shape[-1] != conv_channels:
        y = conv_bn_act(y, conv_channels, 1, name=f"{name}_reduce")
    for i in range(layers_per_block):
        if depthwise:
            y = separable_conv_bn_act(y, conv_channels, name=f"{name}_conv{i + 1}")
        else:
            y = conv_bn_act(y, conv_channels, 3, name=f"{name}_conv{i + 1}")
        outputs.append(y)
    y = layers.Concatenate(name=f"{name}_concat")(outputs)
    y = conv_bn_act(y, out_channels, 1, name=f"{name}_aggregate")
    if attention == "ese":
        y = effective_se(y, name=f"{name}_ese")
    if residual and x.shape[-1] == out_channels:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


#: timm's VoVNet state_dict (``timm.models.vovnet``) onto our layer names: ``stem.{i}`` the three stem convs
#: (``ConvNormAct``: ``.conv``/``.bn``; ``SeparableConvNormAct``: ``.conv_dw``/``.conv_pw``/``.bn``),
#: ``stages.{s}.blocks.{b}`` our OSA module ``stage{s + 2}_osa{b + 1}`` (``conv_reduction``, ``conv_mid.{i}``,
#: ``conv_concat``, ``attn.fc``), ``head.fc`` the Linear.
TIMM_KEYS = KeyMap(
    rules=(
        (r"stem(\d)_(conv|bn)", "stem.{1-1}.{2}"),
        (r"stem(\d)_(dw|pw)", "stem.{1-1}.conv_{2}"),
        (r"stage(\d)_osa(\d+)_reduce_(conv|bn)", "stages.{1-2}.blocks.{2-1}.conv_reduction.{3}"),
        (r"stage(\d)_osa(\d+)_conv(\d)_(conv|bn)", "stages.{1-2}.blocks.{2-1}.conv_mid.{3-1}.{4}"),
        (r"stage(\d)_osa(\d+)_conv(\d)_(dw|pw)", "stages.{1-2}.blocks.{2-1}.conv_mid.{3-1}.conv_{4}"),
        (r"stage(\d)_osa(\d+)_aggregate_(conv|bn)", "stages.{1-2}.blocks.{2-1}.conv_concat.{3}"),
        (r"stage(\d)_osa(\d+)_ese_fc", "stages.{1-2}.blocks.{2-1}.attn.fc"),
        (r"predictions", "head.fc"),
    ),
    head=("head.fc",),
)
#: timm's published VoVNet-v2 weights (``timm.models.get_pretrained_cfg``); VoVNet-v1 has none.
TIMM_CHECKPOINTS = {
    "ese_vovnet19b_dw": (timm_checkpoint("ese_vovnet19b_dw.ra_in1k", crop_pct=0.875, interpolation="bicubic"),),
    "ese_vovnet39b": (timm_checkpoint("ese_vovnet39b.ra_in1k", crop_pct=0.875, interpolation="bicubic"),),
    "ese_vovnet57b": (timm_checkpoint("ese_vovnet57b.ra4_e3600_r256_in1k", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                                      crop_size=256, crop_pct=0.95, interpolation="bicubic"),),
}
#: VoVNet-v2's two changes (CenterMask section 3.1), as options of the one builder
V2 = {"residual": True, "attention": "ese"}


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
    key_maps={"timm": TIMM_KEYS},
)
def vovnet(*, inputs, num_classes, include_top, pooling, classifier_activation, blocks_per_stage=(1, 1, 2, 2),
           layers_per_block=5, residual=False, attention="", depthwise=False, stem_channels=(64, 64, 128)):
    """VoVNet v1, or v2 with ``residual=True, attention="ese"`` (CenterMask, https://arxiv.org/abs/1911.06667).

    Args:
        blocks_per_stage: OSA modules in each of the four stages.
        layers_per_block: 3x3 convs per OSA module (5; 3 in the v2 "19" nets).
        residual: VoVNet-v2's identity shortcut around every OSA module after a stage's first.
        attention: ``""`` or ``"ese"``: VoVNet-v2's effective squeeze-excitation after each stage's last
            OSA module.
        depthwise: depthwise-separable 3x3 convs (the stem's second and third, every OSA conv), each OSA
            module's input reduced by a 1x1 conv first (timm's ``ese_vovnet19b_dw``).
        stem_channels: the three stem convs' widths (64-64-128; the depthwise net's 64-64-64).
    """
    check_choice(attention, ATTENTIONS, "attention", "vovnet")
    if len(tuple(stem_channels)) != 3:
        raise ValueError(f"vovnet: stem_channels must be three widths, received {stem_channels!r}")
    x = conv_bn_act(inputs, stem_channels[0], 3, strides=2, name="stem1")
    for index, (filters, strides) in enumerate(zip(stem_channels[1:], (1, 2)), start=2):
        if depthwise:
            x = separable_conv_bn_act(x, filters, strides, name=f"stem{index}")
        else:
            x = conv_bn_act(x, filters, 3, strides=strides, name=f"stem{index}")
    for stage, (blocks, conv_ch, out_ch) in enumerate(zip(blocks_per_stage, STAGE_CONV, STAGE_OUT), start=2):
        if stage > 2:
            x = max_pool(x, 3, 2, ceil_mode=True, name=f"stage{stage}_pool")
        for i in range(blocks):
            x = osa_module(x, conv_ch, out_ch, layers_per_block, residual=residual and i > 0,
                           attention=attention if i == blocks - 1 else "", depthwise=depthwise,
                           name=f"stage{stage}_osa{i + 1}")
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation)


register_model(
    family="vovnet",
    paper="CenterMask: Real-Time Anchor-Free Instance Segmentation",
    url="https://arxiv.org/abs/1911.06667", year=2020,
    follows="paper section 3.1 (VoVNetV2: identity mapping, effective SE) / timm ese_vovnet*: hard-sigmoid gate",
    variants=[
        Variant("ese_vovnet19b_dw", {"blocks_per_stage": (1, 1, 1, 1), "layers_per_block": 3, "depthwise": True,
                                     "stem_channels": (64, 64, 64), **V2},
                params=6_543_080, notes="count derived from timm's ese_vovnet19b_dw [C]",
                checkpoints=TIMM_CHECKPOINTS["ese_vovnet19b_dw"]),
        Variant("ese_vovnet39b", {"blocks_per_stage": (1, 1, 2, 2), **V2}, params=24_568_936,
                notes="count derived from timm's ese_vovnet39b [C]", checkpoints=TIMM_CHECKPOINTS["ese_vovnet39b"]),
        Variant("ese_vovnet57b", {"blocks_per_stage": (1, 1, 4, 3), **V2}, params=38_608_936,
                notes="count derived from timm's ese_vovnet57b [C]; its checkpoint was trained and is evaluated "
                      "at 256x256", checkpoints=TIMM_CHECKPOINTS["ese_vovnet57b"]),
    ],
    tuner_knobs={"residual": BOOL},
    key_maps={"timm": TIMM_KEYS},
)(vovnet)
