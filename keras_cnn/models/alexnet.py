"""AlexNet (paper two-stream, one-stream, torchvision "one weird trick") and ZFNet.

- Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural
  Networks", NIPS 2012, https://papers.nips.cc/paper/4824 (section 3, Figure 2; seed 003):
  conv2, conv4 and conv5 only see their own GPU's half (groups=2), LRN (k=2, n=5, alpha=1e-4,
  beta=0.75) after conv1 and conv2, overlapping 3x3/2 max-pooling, dropout 0.5 in FC6/FC7.
- Krizhevsky, "One weird trick for parallelizing convolutional neural networks", 2014,
  https://arxiv.org/abs/1404.5997 (torchvision alexnet: widths 64-192-384-256-256, no LRN).
- Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014,
  https://arxiv.org/abs/1311.2901 (Figure 3: 7x7/2 conv1, 5x5/2 conv2; seed 000 section 10).

The flattening head pools adaptively to 6x6 first (torchvision's way): the identity at the
default input, and the same classifier parameters at any input of at least the minimum size.
Trained weights: ``alexnet_owt`` loads torchvision's ``alexnet`` (alexnet-owt-7be5be79.pth); the
first Dense's rows go from PyTorch's NCHW flattening to ours when the weights load.

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("alexnet").input_shape
    (None, 227, 227, 3)
    >>> keras_cnn.build("alexnet", input_shape=(64, 64, 1), num_classes=10).output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import check_choice, check_range, classifier_head, max_pool, symmetric_conv
from keras_cnn.layers.lrn import LocalResponseNormalization
from keras_cnn.models.spec import BOOL, DROPOUT, KeyMap, Recipe, Variant, register_model, torchvision_checkpoint

# conv layers: (filters, kernel, stride, padding, groups, then: "lrn"/"pool" markers)
ALEXNET_PAPER = ((96, 11, 4, 0, 1, "lrn", "pool"), (256, 5, 1, 2, 2, "lrn", "pool"), (384, 3, 1, 1, 1),
                 (384, 3, 1, 1, 2), (256, 3, 1, 1, 2, "pool"))
ALEXNET_UNGROUPED = tuple(row[:4] + (1,) + row[5:] for row in ALEXNET_PAPER)
ALEXNET_OWT = ((64, 11, 4, 2, 1, "pool"), (192, 5, 1, 2, 1, "pool"), (384, 3, 1, 1, 1), (256, 3, 1, 1, 1),
               (256, 3, 1, 1, 1, "pool"))
ZFNET = ((96, 7, 2, 1, 1, "lrn", "pool1"), (256, 5, 2, 0, 1, "lrn", "pool1"), (384, 3, 1, 1, 1),
         (384, 3, 1, 1, 1), (256, 3, 1, 1, 1, "pool"))
CONFIGS = {"paper": ALEXNET_PAPER, "ungrouped": ALEXNET_UNGROUPED, "owt": ALEXNET_OWT, "zfnet": ZFNET}

PAPER = dict(paper="ImageNet Classification with Deep Convolutional Neural Networks",
             url="https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks",
             year=2012)


def convolutional_body(x, config, *, lrn=True):
    for index, (filters, kernel, stride, padding, groups, *markers) in enumerate(config, start=1):
        x = symmetric_conv(x, filters, kernel, strides=stride, groups=groups, padding=padding,
                           kernel_initializer="he_normal", name=f"conv{index}")
        x = layers.ReLU(name=f"conv{index}_relu")(x)
        if "lrn" in markers and lrn:
            x = LocalResponseNormalization(5, 1e-4, 0.75, 2.0, name=f"conv{index}_lrn")(x)
        if "pool" in markers:
            x = max_pool(x, 3, 2, name=f"pool{index}")
        if "pool1" in markers:  # ZFNet pads its pools by one pixel (55x55 and 13x13 maps)
            x = max_pool(x, 3, 2, padding=1, name=f"pool{index}")
    return x


def fc_layers(x, *, width, dropout):
    """The hidden layers of AlexNet's and VGG's heads: two Dense(``width``)+ReLU (``fc1``, ``fc2``),
    each followed by dropout (``fc1_dropout``, ``fc2_dropout``)."""
    for i in (1, 2):
        x = layers.Dense(width, activation="relu", name=f"fc{i}")(x)
        x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    return x


#: torchvision ``alexnet`` (our ``alexnet_owt``): its weights enum.
TORCHVISION_CHECKPOINTS = {
    "alexnet_owt": (torchvision_checkpoint("alexnet-owt-7be5be79.pth", top1=56.522),),
}
#: torchvision alexnet: ``features`` = conv, ReLU, pool, conv, ReLU, pool, (conv, ReLU) x3, pool;
#: ``classifier`` = Dropout, Linear, ReLU, Dropout, Linear, ReLU, Linear (ours: fc1, fc2, predictions).
TORCHVISION_KEYS = KeyMap(
    rules=(
        (r"conv1", "features.0"),
        (r"conv2", "features.3"),
        (r"conv3", "features.6"),
        (r"conv4", "features.8"),
        (r"conv5", "features.10"),
        (r"fc1", "classifier.1"),
        (r"fc2", "classifier.4"),
        (r"predictions", "classifier.6"),
    ),
    head=("classifier.6",),
    ignore=(r"classifier\.[14]\..*",),  # fc1/fc2 load with the top; include_top=False builds neither: skipped
)

#: AlexNet and ZFNet have no BatchNorm: AdamW at the default 1e-3 diverges.
NO_BATCHNORM_RECIPE = Recipe(learning_rate=1e-4, why="no BatchNorm: a 10x smaller rate keeps it from diverging")


@register_model(
    family="alexnet", **PAPER, input_shape=(227, 227, 3), min_input_size=67,
    variants=[
        Variant("alexnet", {"config": "paper"}, params=60_965_224, macs=0.724e9, accuracy="top-1/5 error 40.7/18.2",
                follows="paper section 3 and Figure 2 (two GPU streams as groups=2)",
                notes="count derived from the paper's layers [C]"),
        Variant("alexnet_ungrouped", {"config": "ungrouped"}, params=62_378_344, macs=1.132e9,
                accuracy="top-1 61.9 (osmr)", follows="paper widths as one stream (no groups)"),
        Variant("alexnet_owt", {"config": "owt", "lrn": False}, params=61_100_840, macs=0.714e9,
                input_shape=(224, 224, 3), min_input_size=63, accuracy="top-1 56.52",
                follows="torchvision alexnet (one weird trick)", checkpoints=TORCHVISION_CHECKPOINTS["alexnet_owt"],
                key_maps={"torchvision": TORCHVISION_KEYS}),
    ],
    recipe=NO_BATCHNORM_RECIPE,
    tuner_knobs={"dropout": DROPOUT, "lrn": BOOL},
)
def alexnet(*, inputs, num_classes, include_top, pooling, classifier_activation, config="paper", lrn=True,
            dropout=0.5):
    """AlexNet. ``config``: ``"paper"`` (groups=2), ``"ungrouped"``, ``"owt"`` (torchvision);
    ``lrn`` toggles local response normalization; ``dropout`` in FC6/FC7."""
    check_choice(config, tuple(CONFIGS), "config", "alexnet")
    return _alexnet_like(inputs, CONFIGS[config], lrn=lrn, dropout=dropout, num_classes=num_classes,
                         include_top=include_top, pooling=pooling, classifier_activation=classifier_activation)


def _alexnet_like(inputs, config, *, lrn, dropout, num_classes, include_top, pooling, classifier_activation):
    check_range(dropout, 0.0, 0.99, "dropout", "alexnet")
    x = convolutional_body(inputs, config, lrn=lrn)
    return classifier_head(x, include_top, pooling, num_classes, classifier_activation, pool=6,
                           hidden=lambda y: fc_layers(y, width=4096, dropout=dropout))


@register_model(
    family="zfnet", paper="Visualizing and Understanding Convolutional Networks",
    url="https://arxiv.org/abs/1311.2901", year=2014, input_shape=(224, 224, 3), min_input_size=53,
    variants=[Variant("zfnet", params=62_357_608, macs=1.170e9, accuracy="top-1/5 error 38.4/16.5",
                      follows="paper Figure 3 (7x7/2 conv1, 5x5/2 conv2; 110-55-26-13-6 maps)",
                      notes="LRN after conv1/conv2 uses AlexNet's settings (the paper renormalizes "
                            "without giving constants)")],
    recipe=NO_BATCHNORM_RECIPE,
    tuner_knobs={"dropout": DROPOUT, "lrn": BOOL},
)
def zfnet(*, inputs, num_classes, include_top, pooling, classifier_activation, lrn=True, dropout=0.5):
    """ZFNet: AlexNet with a 7x7/2 first layer and a 5x5/2 second layer, ungrouped."""
    return _alexnet_like(inputs, ZFNET, lrn=lrn, dropout=dropout, num_classes=num_classes,
                         include_top=include_top, pooling=pooling, classifier_activation=classifier_activation)
