"""Network in Network (the d2l version).

Lin, Chen, Yan, "Network In Network", ICLR 2014, https://arxiv.org/abs/1312.4400; layers of
d2l.ai chapter 7.3 (seed 004 section 7.4): three NiN blocks (an 11x11/5x5/3x3 conv, each
followed by two 1x1 convs, all ReLU) with 3x3/2 max-pooling, dropout, a last NiN block with
``num_classes`` channels, global average pooling; no dense layer.

Example:
    >>> import keras_cnn
    >>> keras_cnn.build("nin").output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import check_range, classifier_head, symmetric_conv
from keras_cnn.models.spec import DROPOUT, Recipe, Variant, register_model

#: (filters, kernel, stride, padding) of the first conv of each NiN block.
NIN_BLOCKS = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))


def nin_block(x, filters, kernel, stride, padding, name):
    """k x k conv then two 1x1 convs (the "mlpconv" layer), ReLU after each."""
    x = symmetric_conv(x, filters, kernel, strides=stride, padding=padding, kernel_initializer="he_normal",
                       name=f"{name}_conv")
    x = layers.ReLU(name=f"{name}_relu")(x)
    for i in (1, 2):
        x = layers.Conv2D(filters, 1, activation="relu", kernel_initializer="he_normal", name=f"{name}_mlp{i}")(x)
    return x


@register_model(
    family="nin", paper="Network In Network", url="https://arxiv.org/abs/1312.4400", year=2014,
    input_shape=(224, 224, 1), min_input_size=67, num_classes=10,
    variants=[Variant("nin", params=1_992_166, macs=0.762e9, follows="d2l.ai chapter 7.3 (seed 004 section 7.4)",
                      notes="count derived [C] at 224x224x1 and 10 classes")],
    recipe=Recipe(learning_rate=3e-4, why="no BatchNorm: a smaller rate keeps it from diverging"),
    tuner_knobs={"dropout": DROPOUT},
)
def nin(*, inputs, num_classes, include_top, pooling, classifier_activation, dropout=0.5):
    """NiN: mlpconv blocks, the classifier is a NiN block with ``num_classes`` maps + global pooling."""
    check_range(dropout, 0.0, 0.99, "dropout", "nin")
    x = inputs
    for index, (filters, kernel, stride, padding) in enumerate(NIN_BLOCKS, start=1):
        x = nin_block(x, filters, kernel, stride, padding, name=f"block{index}")
        x = layers.MaxPooling2D(3, 2, name=f"pool{index}")(x)

    def nin_classifier(y):  # a NiN block with one map per class, averaged over the map
        y = nin_block(y, num_classes, 3, 1, 1, name="classifier")
        return layers.GlobalAveragePooling2D(name="avg_pool")(y)

    return classifier_head(x, include_top, pooling, num_classes, classifier_activation, pool=None,
                           dropout=dropout, dropout_name="dropout", logits=nin_classifier)
