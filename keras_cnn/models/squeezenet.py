"""SqueezeNet 1.0 and 1.1.

Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model
size", 2016, https://arxiv.org/abs/1602.07360 (Table 1; torchvision squeezenet1_0/1_1, whose
1.1 is the SqueezeNet v1.1 of the authors' repository). Max pools use ceil mode as the reference.
Initialization is the reference's (Kaiming-uniform convs, N(0, 0.01) classifier): with Keras'
default Glorot init the signal vanishes through the 16 ReLU convs and training never starts.
Without BatchNorm the net is sensitive to the learning rate: with Adam keep it at or below
5e-4 (the reference used SGD at 0.04), or the classifier's final ReLU dies and the loss sticks
at ln(num_classes). ``bypass="simple"`` adds the paper's simple bypass (section 6) around the fire modules whose input
and output widths agree. Trained weights: torchvision's squeezenet1_0 / 1_1 (``weights="torchvision"``,
key maps per version: their fires sit at other ``features`` positions); the head is ``classifier.1``.

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("squeezenet1_1", num_classes=10).output_shape
    (None, 10)
"""

import keras
from keras import layers

from keras_cnn.blocks import check_choice, classifier_head, max_pool, symmetric_conv
from keras_cnn.models.spec import DROPOUT, KeyMap, Recipe, Variant, choice, register_model, torchvision_checkpoint

#: stem (filters, kernel) and the layer sequence: "pool" or fire (squeeze, expand1x1, expand3x3).
SQUEEZENET_CONFIGS = {
    "1_0": ((96, 7), ("pool", (16, 64, 64), (16, 64, 64), (32, 128, 128), "pool", (32, 128, 128),
                      (48, 192, 192), (48, 192, 192), (64, 256, 256), "pool", (64, 256, 256))),
    "1_1": ((64, 3), ("pool", (16, 64, 64), (16, 64, 64), "pool", (32, 128, 128), (32, 128, 128), "pool",
                      (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256))),
}

#: torchvision's published weights (``torchvision.models.<name>``'s weights enum).
TORCHVISION_CHECKPOINTS = {
    "squeezenet1_0": (torchvision_checkpoint("squeezenet1_0-b66bff10.pth", top1=58.092),),
    "squeezenet1_1": (torchvision_checkpoint("squeezenet1_1-b8a52dc0.pth", top1=58.178),),
}


def torchvision_keys(version):
    """The key map of torchvision ``squeezenet{version}``: ``features`` numbers the stem conv (0),
    its ReLU and every pool and fire module in order, so 1.0 and 1.1 place their fires apart;
    ``classifier`` is Dropout, the 1x1 conv (``classifier.1``, the head), ReLU, pooling."""
    rules, index, fire = [(r"stem", "features.0")], 2, 2
    for item in SQUEEZENET_CONFIGS[version][1]:
        if item != "pool":
            rules.append((rf"fire{fire}_(squeeze|expand1x1|expand3x3)", f"features.{index}.{{1}}"))
            fire += 1
        index += 1
    rules.append((r"classifier_conv", "classifier.1"))
    return KeyMap(rules=tuple(rules), head=("classifier.1",))


def fire_module(x, squeeze, expand1x1, expand3x3, *, bypass, name):
    """Squeeze 1x1 -> (expand 1x1 | expand 3x3) concatenated, ReLU everywhere."""
    conv = dict(activation="relu", kernel_initializer="he_uniform")  # torchvision's kaiming_uniform
    s = layers.Conv2D(squeeze, 1, name=f"{name}_squeeze", **conv)(x)
    e1 = layers.Conv2D(expand1x1, 1, name=f"{name}_expand1x1", **conv)(s)
    e3 = layers.Conv2D(expand3x3, 3, padding="same", name=f"{name}_expand3x3", **conv)(s)
    out = layers.Concatenate(name=f"{name}_concat")([e1, e3])
    if bypass == "simple" and x.shape[-1] == out.shape[-1]:
        out = layers.Add(name=f"{name}_bypass")([x, out])
    return out


@register_model(
    family="squeezenet",
    paper="SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size",
    url="https://arxiv.org/abs/1602.07360", year=2016, min_input_size=32,
    follows="paper Table 1 / torchvision squeezenet",
    variants=[
        Variant("squeezenet1_0", {"version": "1_0"}, params=1_248_424, macs=819e6, accuracy="top-1 58.09",
                checkpoints=TORCHVISION_CHECKPOINTS["squeezenet1_0"],
                key_maps={"torchvision": torchvision_keys("1_0")}),
        Variant("squeezenet1_1", {"version": "1_1"}, params=1_235_496, macs=349e6, accuracy="top-1 58.18",
                checkpoints=TORCHVISION_CHECKPOINTS["squeezenet1_1"],
                key_maps={"torchvision": torchvision_keys("1_1")}),
    ],
    recipe=Recipe(learning_rate=2e-4, why="no BatchNorm: dies at 2e-3, trains at 2e-4"),
    tuner_knobs={"bypass": choice("none", "simple"), "dropout": DROPOUT},
)
def squeezenet(*, inputs, num_classes, include_top, pooling, classifier_activation, version="1_0",
               bypass=None, dropout=0.5):
    """SqueezeNet: fire modules, no dense layer; the classifier is a 1x1 conv, ReLU and global
    average pooling.

    Args:
        version: ``"1_0"`` or ``"1_1"`` (set by the registry name).
        bypass: None (paper's default) or ``"simple"`` (identity shortcuts, no extra params).
        dropout: dropout before the classifier conv.
    """
    check_choice(version, tuple(SQUEEZENET_CONFIGS), "version", "squeezenet")
    check_choice(bypass, (None, "simple"), "bypass", "squeezenet")
    (stem_filters, stem_kernel), sequence = SQUEEZENET_CONFIGS[version]
    x = symmetric_conv(inputs, stem_filters, stem_kernel, strides=2, padding="valid",
                       kernel_initializer="he_uniform", name="stem")
    x = layers.ReLU(name="stem_relu")(x)
    fire, pool = 2, 1
    for item in sequence:
        if item == "pool":
            x = max_pool(x, 3, 2, ceil_mode=True, name=f"pool{pool}")
            pool += 1
        else:
            x = fire_module(x, *item, bypass=bypass, name=f"fire{fire}")
            fire += 1

    def conv_classifier(y):  # 1x1 conv + ReLU to the classes, averaged over the map
        y = layers.Conv2D(num_classes, 1, activation="relu", name="classifier_conv",
                          kernel_initializer=keras.initializers.RandomNormal(0.0, 0.01))(y)
        return layers.GlobalAveragePooling2D(name="avg_pool")(y)

    return classifier_head(x, include_top, pooling, num_classes, classifier_activation, pool=None,
                           dropout=dropout, logits=conv_classifier)
