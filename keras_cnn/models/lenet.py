"""LeNet: the faithful LeNet-5 of 1998 and the modern d2l LeNet.

- ``lenet5``: LeCun et al., "Gradient-based learning applied to document recognition", Proc. IEEE
  1998 (http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf), section II.B: C1 (156 params),
  trainable subsampling S2 (12), partial C3 (1,516, Table I), S4 (32), C5 (48,120), F6 (10,164),
  scaled-tanh squashing everywhere, Euclidean RBF output with fixed codes: 60,000 trainable params.
  Inputs in [0, 1] are mapped as the paper's section II.B says: background (0) to -0.1, foreground
  (1) to 1.175, "which makes the mean input roughly 0, and the variance roughly 1" (a parameter-free
  ``Rescaling`` layer; ``input_scaling=None`` feeds the [0, 1] images unchanged).
- ``lenet``: the d2l.ai version (chapter 7.1): full C3, sigmoid (or ReLU), average pooling, Dense
  120-84-classes, conv1 padded so 28x28 MNIST fits: 61,706 params.

Example:
    >>> import keras_cnn
    >>> model = keras_cnn.build("lenet5", num_classes=10)
    >>> model.output_shape
    (None, 10)
"""

from keras import layers

from keras_cnn.blocks import check_choice, classifier_head
from keras_cnn.layers.activations import lecun_tanh
from keras_cnn.layers.lenet import LENET5_C3_TABLE, EuclideanRBF, PartialConv2D, TrainableSubsampling
from keras_cnn.models.spec import Recipe, Variant, choice, register_model

LECUN_1998 = dict(
    paper="Gradient-based learning applied to document recognition",
    url="http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf",
    year=1998,
)

#: LeCun et al. 1998, section II.B: background and foreground pixel values of the network's input.
PAPER_INPUT_RANGE = (-0.1, 1.175)

#: Training defaults (LeCun et al. 1998): small images padded (not scaled) into the input field, no augmentation.
LECUN_WHY = "LeCun et al. 1998: small images padded into the input field, no augmentation"


@register_model(
    family="lenet", **LECUN_1998, input_shape=(32, 32, 1), min_input_size=32, num_classes=10,
    variants=[Variant(
        "lenet5", params=60_000, follows="LeCun et al. 1998, section II.B (seed 000 section 8)",
        notes="RBF codes are reproducible random +-1 vectors (the paper's 7x12 bitmaps are not "
              "published as data); head='softmax' swaps the RBF layer for Dense(num_classes) "
              "(+850 params at 10 classes) for everyday training; input_scaling=None skips the paper's "
              "parameter-free -0.1..1.175 input mapping, input_scaling=(scale, offset) standardizes "
              "other data (x * scale + offset).")],
    recipe=Recipe(weight_decay=0.0, warmup_epochs=0, augment=False, resize="pad", batch_size=32, learning_rate=2e-3,
                  label_smoothing=0.1,
                  why=LECUN_WHY + "; batch 32, AdamW 2e-3, label smoothing 0.1 (best on Fashion-MNIST, "
                                  "benchmarks/README.md)"),
)
def lenet5(*, inputs, num_classes, include_top, pooling, classifier_activation, head="rbf",
           input_scaling="paper"):
    """LeNet-5 as published: 32x32x1 input, ``head="rbf"`` (paper) or ``"softmax"`` (Dense).

    With ``head="rbf"`` the RBF layer returns negated penalties, so ``classifier_activation``
    (softmax by default) turns them into class probabilities and the usual sparse categorical
    cross-entropy trains the net.

    ``input_scaling``: ``"paper"`` maps [0, 1] pixels to [-0.1, 1.175] (section II.B, which aims at
    inputs of mean about 0 and variance about 1); a ``(scale, offset)`` pair applies
    ``x * scale + offset`` instead, e.g. ``(1 / std, -mean / std)`` to standardize a data set whose
    statistics differ from MNIST's (Fashion-MNIST: mean 0.286, std 0.353); ``None`` feeds [0, 1].
    """
    check_choice(head, ("rbf", "softmax"), "head", "lenet5")
    x = inputs
    scale_offset = input_scaling_pair(input_scaling)
    if scale_offset is not None:
        x = layers.Rescaling(scale_offset[0], offset=scale_offset[1], name="input_scaling")(x)
    x = layers.Conv2D(6, 5, activation=lecun_tanh, name="c1")(x)
    x = TrainableSubsampling(name="s2")(x)
    x = layers.Activation(lecun_tanh, name="s2_act")(x)
    x = PartialConv2D(LENET5_C3_TABLE, 5, name="c3")(x)
    x = layers.Activation(lecun_tanh, name="c3_act")(x)
    x = TrainableSubsampling(name="s4")(x)
    x = layers.Activation(lecun_tanh, name="s4_act")(x)
    x = layers.Conv2D(120, 5, activation=lecun_tanh, name="c5")(x)

    def rbf(y):  # the 1998 output layer: distances to the class codes, as logits
        return EuclideanRBF(num_classes, as_logits=True, name="rbf", dtype="float32")(y)

    return classifier_head(x, include_top, pooling, num_classes, classifier_activation, pool="flatten",
                           hidden=lambda y: layers.Dense(84, activation=lecun_tanh, name="f6")(y),
                           logits=None if head == "softmax" else rbf)


def input_scaling_pair(input_scaling):
    """``(scale, offset)`` of LeNet-5's input mapping: ``"paper"``, a pair of numbers, or ``None``."""
    if input_scaling is None:
        return None
    if input_scaling == "paper":
        low, high = PAPER_INPUT_RANGE
        return high - low, low
    if (isinstance(input_scaling, (list, tuple)) and len(input_scaling) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in input_scaling)
            and input_scaling[0] != 0):
        return float(input_scaling[0]), float(input_scaling[1])
    raise ValueError(f"lenet5: input_scaling must be 'paper', None or a (scale, offset) pair of numbers with a "
                     f"nonzero scale, received {input_scaling!r}")


@register_model(
    family="lenet", **LECUN_1998, input_shape=(28, 28, 1), min_input_size=12, num_classes=10,
    variants=[Variant("lenet", params=61_706, macs=0.417e6,
                      follows="d2l.ai chapter 7.1 (seed 004 section 7.1)")],
    recipe=Recipe(weight_decay=0.0, warmup_epochs=0, augment=False, resize="pad", why=LECUN_WHY),
    tuner_knobs={"activation": choice("tanh", "relu")},
)
def lenet(*, inputs, num_classes, include_top, pooling, classifier_activation, activation="sigmoid"):
    """The modern LeNet of d2l: conv(6, 5, pad 2) - avgpool - conv(16, 5) - avgpool - 120-84-classes.

    ``activation``: ``"sigmoid"`` (d2l, as in 1998) or ``"relu"``.
    """
    check_choice(activation, ("sigmoid", "relu", "tanh"), "activation", "lenet")
    x = layers.Conv2D(6, 5, padding="same", activation=activation, name="conv1")(inputs)
    x = layers.AveragePooling2D(2, name="pool1")(x)
    x = layers.Conv2D(16, 5, activation=activation, name="conv2")(x)
    x = layers.AveragePooling2D(2, name="pool2")(x)

    def fc_layers(y):
        y = layers.Dense(120, activation=activation, name="fc1")(y)
        return layers.Dense(84, activation=activation, name="fc2")(y)

    return classifier_head(x, include_top, pooling, num_classes, classifier_activation, pool="flatten",
                           hidden=fc_layers)
