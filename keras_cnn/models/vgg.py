"""VGG: configurations A, A-LRN, B, C, D, E, with or without BatchNorm.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015, https://arxiv.org/abs/1409.1556 (Table 1; seed 003). ``*_bn`` follow torchvision
(BN after every conv, conv bias kept). The head pools adaptively to 7x7 (identity at 224), so
the classifier keeps its parameters at other input sizes.

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("vgg16", input_shape=(32, 32, 1), num_classes=10).output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import batch_norm, check_range, feature_pooling, symmetric_conv
from keras_cnn.layers.lrn import LocalResponseNormalization
from keras_cnn.models.alexnet import flatten_head
from keras_cnn.models.spec import Variant, register_model

#: Table 1: numbers are 3x3 convs, "1:n" a 1x1 conv (config C), "M" max-pool, "LRN" (A-LRN).
CONFIGS = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "A-LRN": (64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "C": (64, 64, "M", 128, 128, "M", 256, 256, "1:256", "M", 512, 512, "1:512", "M", 512, 512, "1:512", "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}

# name: (config, batch_norm, params, MACs, top-1)
VARIANTS = {
    "vgg11": ("A", False, 132_863_336, 7.61e9, "69.02"),
    "vgg11_lrn": ("A-LRN", False, 132_863_336, 7.61e9, "paper top-1 error 29.7 (single scale)"),
    "vgg13": ("B", False, 133_047_848, 11.31e9, "69.93"),
    "vgg16_c": ("C", False, 133_638_952, None, "paper top-1 error 28.1 (single scale)"),
    "vgg16": ("D", False, 138_357_544, 15.47e9, "71.59"),
    "vgg19": ("E", False, 143_667_240, 19.63e9, "72.38"),
    "vgg11_bn": ("A", True, 132_868_840, 7.61e9, "70.37"),
    "vgg13_bn": ("B", True, 133_053_736, 11.31e9, "71.59"),
    "vgg16_bn": ("D", True, 138_365_992, 15.47e9, "73.36"),
    "vgg19_bn": ("E", True, 143_678_248, 19.63e9, "74.22"),
}
NOTES = {
    "vgg11_lrn": "config A-LRN: LRN after the first conv (no parameters, so the count equals vgg11)",
    "vgg16_c": "config C: the third conv of stages 3-5 is 1x1; count derived from Table 1 [C] "
               "(138,357,544 - 3 x 8 x 3x3-to-1x1 savings = 133,638,952; the paper prints 134M)",
}


@register_model(
    family="vgg",
    paper="Very Deep Convolutional Networks for Large-Scale Image Recognition",
    url="https://arxiv.org/abs/1409.1556", year=2015, min_input_size=32,
    variants=[Variant(name, {"config": cfg, "batch_norm": bn}, params=params, macs=macs, accuracy=f"top-1 {top1}",
                      follows=("torchvision vgg_bn" if bn else "paper Table 1 / torchvision vgg"),
                      notes=NOTES.get(name, ""))
              for name, (cfg, bn, params, macs, top1) in VARIANTS.items()],
)
def vgg(*, inputs, num_classes, include_top, pooling, classifier_activation, config="D", batch_norm=False,
        dropout=0.5):
    """VGG configuration ``config`` (A, A-LRN, B, C, D, E); ``batch_norm`` adds BN after every
    conv; ``dropout`` in the two 4096-wide layers."""
    if config not in CONFIGS:
        raise ValueError(f"vgg: config must be one of {list(CONFIGS)}, received {config!r}")
    check_range(dropout, 0.0, 0.99, "dropout", "vgg")
    x = vgg_body(inputs, CONFIGS[config], use_batch_norm=batch_norm)
    if not include_top:
        return feature_pooling(x, pooling)
    return flatten_head(x, grid=7, hidden=4096, dropout=dropout, num_classes=num_classes,
                        classifier_activation=classifier_activation)


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
