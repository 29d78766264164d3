"""Squeeze-and-excitation (SENet, section 3).

Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018, https://arxiv.org/abs/1709.01507

    s = gate(W2 act(W1 mean_hw(x)))      y = x * s

The two fully connected layers are 1x1 convolutions with bias, as in the reference code of
SENet, MobileNet v3 and timm, so their weights load one to one.
"""

import keras
from keras import ops

from keras_cnn.layers.channels import make_divisible


def _round_channels(value, divisor):
    return make_divisible(value, divisor) if divisor else max(1, int(value))


@keras.saving.register_keras_serializable(package="keras_cnn")
class SqueezeExcite(keras.layers.Layer):
    """Channel attention: squeeze (global average), excite (two 1x1 convs), rescale.

    Args:
        ratio: reduced channels as a fraction of the input channels (SENet: 1/16,
            MobileNet v3: 1/4). Ignored when ``reduced_channels`` is given.
        reduced_channels: explicit bottleneck width.
        divisor: round the bottleneck with ``make_divisible(·, divisor)`` (MobileNet v3: 8);
            None truncates ``int(channels * ratio)`` (SENet).
        activation: activation after the first conv.
        gate: activation of the gate (``"sigmoid"`` or ``"hard_sigmoid"``).

    Example:
        >>> import numpy as np
        >>> se = SqueezeExcite(ratio=0.25)
        >>> se(np.ones((2, 4, 4, 16), "float32")).shape
        (2, 4, 4, 16)
    """

    def __init__(self, ratio=0.25, reduced_channels=None, divisor=None, activation="relu",
                 gate="sigmoid", **kwargs):
        super().__init__(**kwargs)
        if reduced_channels is None and not (isinstance(ratio, (int, float)) and 0 < ratio <= 1):
            raise ValueError(f"SqueezeExcite: ratio must be in (0, 1], received {ratio!r}")
        if reduced_channels is not None and (not isinstance(reduced_channels, int) or reduced_channels < 1):
            raise ValueError(f"SqueezeExcite: reduced_channels must be a positive integer, "
                             f"received {reduced_channels!r}")
        self.ratio = ratio
        self.reduced_channels = reduced_channels
        self.divisor = divisor
        self.activation = activation
        self.gate = gate

    def build(self, input_shape):
        channels = input_shape[-1]
        squeeze = self.reduced_channels or _round_channels(channels * self.ratio, self.divisor)
        self.reduce = keras.layers.Conv2D(squeeze, 1, activation=self.activation, name="reduce",
                                          dtype=self.dtype_policy)
        self.expand = keras.layers.Conv2D(channels, 1, activation=self.gate, name="expand",
                                          dtype=self.dtype_policy)
        self.reduce.build((None, 1, 1, channels))
        self.expand.build((None, 1, 1, squeeze))

    def call(self, inputs):
        s = ops.mean(inputs, axis=(1, 2), keepdims=True)
        return inputs * self.expand(self.reduce(s))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "ratio": self.ratio, "reduced_channels": self.reduced_channels,
                "divisor": self.divisor, "activation": self.activation, "gate": self.gate}
