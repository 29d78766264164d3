"""h-swish and h-sigmoid (MobileNet v3, section 5.2).

Howard et al., "Searching for MobileNetV3", ICCV 2019, https://arxiv.org/abs/1905.02244

    h-sigmoid(x) = relu6(x + 3) / 6        h-swish(x) = x * relu6(x + 3) / 6

These are Keras' own ``keras.activations.hard_sigmoid`` and ``hard_swish`` (Keras 3 uses
exactly these formulas). We use Keras' functions, not a hand-rolled clip, because the TFLite
converter fuses ``hard_swish`` into one HARD_SWISH op that XNNPACK runs.
"""

import keras

hard_sigmoid = keras.activations.hard_sigmoid
hard_swish = keras.activations.hard_swish


def h_swish_reference(x):
    """x * relu6(x + 3) / 6 written out, for tests and documentation (``x``: any backend's tensor or
    a NumPy array; ``keras.ops.multiply``, as a NumPy array times a torch tensor is not defined)."""
    return keras.ops.multiply(x, keras.ops.relu6(x + 3.0)) / 6.0


def h_sigmoid_reference(x):
    """relu6(x + 3) / 6 written out, for tests and documentation."""
    return keras.ops.relu6(x + 3.0) / 6.0


@keras.saving.register_keras_serializable(package="keras_cnn")
def lecun_tanh(x):
    """LeNet-5's squashing function ``1.7159 * tanh(2x / 3)`` (LeCun et al. 1998, appendix A)."""
    return 1.7159 * keras.ops.tanh(x * (2.0 / 3.0))
