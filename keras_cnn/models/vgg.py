"""VGG: configurations A, A-LRN, B, C, D, E, with or without BatchNorm.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015, https://arxiv.org/abs/1409.1556 (Table 1; seed 003). ``*_bn`` follow torchvision
(BN after every conv, conv bias kept). The head pools adaptively to 7x7 (identity at 224), so
the classifier keeps its parameters at other input sizes. Trained weights: torchvision's
vgg11 ... vgg19_bn (``weights="torchvision"``); torchvision numbers ``features`` by position, so
each configuration has its own key map (:func:`torchvision_keys`).

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("vgg16", input_shape=(32, 32, 1), num_classes=10).output_shape
    (None, 10)
"""

from typing import NamedTuple

from keras import layers

from keras_cnn.blocks import batch_norm, check_range, classifier_head, symmetric_conv
from keras_cnn.layers.lrn import LocalResponseNormalization
from keras_cnn.models.alexnet import fc_layers
from keras_cnn.models.spec import DROPOUT, KeyMap, Recipe, Variant, register_model, torchvision_checkpoint

#: Table 1: numbers are 3x3 convs, "1:n" a 1x1 conv (config C), "M" max-pool, "LRN" (A-LRN).
CONFIGS = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "A-LRN": (64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "C": (64, 64, "M", 128, 128, "M", 256, 256, "1:256", "M", 512, 512, "1:512", "M", 512, 512, "1:512", "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}

class VGGRow(NamedTuple):
    """One registered VGG: its :func:`vgg` options and the reference numbers."""

    config: dict  # builder options (config, batch_norm), exactly the Variant's config
    params: int  # reference trainable parameters
    macs: float | None  # reference multiply-adds at 224x224 (None: no reference)
    top1: str  # reference ImageNet top-1 (torchvision, or the paper's error)


VARIANTS = {
    "vgg11": VGGRow(config=dict(config="A", batch_norm=False), params=132_863_336, macs=7.61e9, top1="69.02"),
    "vgg11_lrn": VGGRow(config=dict(config="A-LRN", batch_norm=False), params=132_863_336, macs=7.61e9,
                        top1="paper top-1 error 29.7 (single scale)"),
    "vgg13": VGGRow(config=dict(config="B", batch_norm=False), params=133_047_848, macs=11.31e9, top1="69.93"),
    "vgg16_c": VGGRow(config=dict(config="C", batch_norm=False), params=133_638_952, macs=None,
                      top1="paper top-1 error 28.1 (single scale)"),
    "vgg16": VGGRow(config=dict(config="D", batch_norm=False), params=138_357_544, macs=15.47e9, top1="71.59"),
    "vgg19": VGGRow(config=dict(config="E", batch_norm=False), params=143_667_240, macs=19.63e9, top1="72.38"),
    "vgg11_bn": VGGRow(config=dict(config="A", batch_norm=True), params=132_868_840, macs=7.61e9, top1="70.37"),
    "vgg13_bn": VGGRow(config=dict(config="B", batch_norm=True), params=133_053_736, macs=11.31e9, top1="71.59"),
    "vgg16_bn": VGGRow(config=dict(config="D", batch_norm=True), params=138_365_992, macs=15.47e9, top1="73.36"),
    "vgg19_bn": VGGRow(config=dict(config="E", batch_norm=True), params=143_678_248, macs=19.63e9, top1="74.22"),
}
NOTES = {
    "vgg11_lrn": "config A-LRN: LRN after the first conv (no parameters, so the count equals vgg11)",
    "vgg16_c": "config C: the third conv of stages 3-5 is 1x1; count derived from Table 1 [C] "
               "(138,357,544 - 3 x 8 x 3x3-to-1x1 savings = 133,638,952; the paper prints 134M)",
}
#: Training defaults: plain VGG has no BatchNorm and diverges at AdamW 1e-3; the _bn variants train at it.
RECIPE = Recipe(learning_rate=1e-4, why="no BatchNorm: a 10x smaller rate keeps it from diverging")
BN_RECIPE = Recipe(why="VGG with BatchNorm trains at the default rate")

#: torchvision's published weights (``torchvision.models.<name>``'s weights enum).
TORCHVISION_CHECKPOINTS = {
    "vgg11": (torchvision_checkpoint("vgg11-8a719046.pth", top1=69.02),),
    "vgg11_bn": (torchvision_checkpoint("vgg11_bn-6002323d.pth", top1=70.37),),
    "vgg13": (torchvision_checkpoint("vgg13-19584684.pth", top1=69.928),),
    "vgg13_bn": (torchvision_checkpoint("vgg13_bn-abd245e5.pth", top1=71.586),),
    "vgg16": (torchvision_checkpoint("vgg16-397923af.pth", top1=71.592),),
    "vgg16_bn": (torchvision_checkpoint("vgg16_bn-6c64b313.pth", top1=73.36),),
    "vgg19": (torchvision_checkpoint("vgg19-dcbb9e9d.pth", top1=72.376),),
    "vgg19_bn": (torchvision_checkpoint("vgg19_bn-c79401a0.pth", top1=74.218),),
}


def torchvision_keys(config, batch_norm):
    """The key map of torchvision ``vgg*``/``vgg*_bn`` for ``CONFIGS[config]``. Its ``features``
    Sequential numbers every module in order (conv, [BN,] ReLU per conv, one per max-pool), so
    each configuration has its own map; ``classifier`` is Linear, ReLU, Dropout, Linear, ReLU,
    Dropout, Linear (0, 3, 6)."""
    rules, index, stage, conv = [], 0, 1, 1
    for item in CONFIGS[config]:
        if item == "M":
            index, stage, conv = index + 1, stage + 1, 1
            continue
        rules.append((f"stage{stage}_conv{conv}", f"features.{index}"))
        if batch_norm:
            rules.append((f"stage{stage}_conv{conv}_bn", f"features.{index + 1}"))
        index, conv = index + (3 if batch_norm else 2), conv + 1
    rules += [("fc1", "classifier.0"), ("fc2", "classifier.3"), ("predictions", "classifier.6")]
    # fc1/fc2 load with the top; include_top=False builds neither, and their keys are then skipped
    return KeyMap(rules=tuple(rules), head=("classifier.6",),
                  ignore=(r".*\.num_batches_tracked", r"classifier\.[03]\..*"))


@register_model(
    family="vgg",
    paper="Very Deep Convolutional Networks for Large-Scale Image Recognition",
    url="https://arxiv.org/abs/1409.1556", year=2015, min_input_size=32,
    variants=[Variant(name, row.config, params=row.params, macs=row.macs, accuracy=f"top-1 {row.top1}",
                      follows=("torchvision vgg_bn" if row.config["batch_norm"] else "paper Table 1 / torchvision vgg"),
                      notes=NOTES.get(name, ""), recipe=BN_RECIPE if row.config["batch_norm"] else None,
                      keras_applications=("VGG16", {}) if name == "vgg16" else None,
                      checkpoints=TORCHVISION_CHECKPOINTS.get(name, ()),
                      key_maps={"torchvision": torchvision_keys(**row.config)} if name in TORCHVISION_CHECKPOINTS
                      else None)
              for name, row in VARIANTS.items()],
    recipe=RECIPE,
    tuner_knobs={"dropout": DROPOUT},
)
def vgg(*, inputs, num_classes, include_top, pooling, classifier_activation, config="D", batch_norm=False,
        dropout=0.5):
    """VGG configuration ``config`` (A, A-LRN, B, C, D, E); ``batch_norm`` adds BN after every
    conv; ``dropout`` in the two 4096-wide layers."""
    if config not in CONFIGS:
        raise ValueError(f"vgg: config must be one of {list(CONFIGS)}, received {config!r}")
    check_range(dropout, 0.0, 0.99, "dropout", "vgg")
    x = vgg_body(inputs, CONFIGS[config], use_batch_norm=batch_norm)
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation, pool=7,
                           hidden=lambda y: fc_layers(y, width=4096, dropout=dropout))


def vgg_body(x, config, *, use_batch_norm):
    stage, conv = 1, 1
    for item in config:
        if item == "M":
            x = layers.MaxPooling2D(2, 2, name=f"stage{stage}_pool")(x)
            stage, conv = stage + 1, 1
            continue
        if item == "LRN":
            x = LocalResponseNormalization(5, 1e-4, 0.75, 2.0, name=f"stage{stage}_lrn")(x)
            continue
        kernel, filters = (1, int(item[2:])) if isinstance(item, str) else (3, item)
        name = f"stage{stage}_conv{conv}"
        x = symmetric_conv(x, filters, kernel, kernel_initializer="he_normal", name=name)
        if use_batch_norm:
            x = batch_norm(x, name=f"{name}_bn")
        x = layers.ReLU(name=f"{name}_relu")(x)
        conv += 1
    return x
