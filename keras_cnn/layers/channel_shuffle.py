"""Channel shuffle (ShuffleNet v1, section 3.1).

Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile
Devices", CVPR 2018, https://arxiv.org/abs/1707.01083

Channels ``[g0c0, g0c1, ..., g1c0, ...]`` become ``[g0c0, g1c0, ..., g0c1, g1c1, ...]``:
reshape to ``(H, W, groups, C/groups)``, swap the last two axes, flatten back.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cnn")
class ChannelShuffle(keras.layers.Layer):
    """Interleave the channels of ``groups`` groups.

    Shapes are static wherever the input's are (batch as -1, never read at run time), so a TFLite
    file holds one RESHAPE, one TRANSPOSE and one RESHAPE, with no SHAPE/STRIDED_SLICE/PACK.

    Args:
        groups: number of channel groups; must divide the channel count.

    Example:
        >>> import numpy as np
        >>> x = np.arange(6, dtype="float32").reshape(1, 1, 1, 6)
        >>> ChannelShuffle(2)(x).numpy().ravel().tolist()
        [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    """

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"ChannelShuffle: groups must be a positive integer, received {groups!r}")
        self.groups = groups

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.groups:
            raise ValueError(
                f"ChannelShuffle: the channel count must be static and divisible by groups={self.groups}, "
                f"received input shape {tuple(input_shape)}"
            )

    def call(self, inputs):
        if self.groups == 1:
            return inputs
        height, width, channels = inputs.shape[1:]
        if height is None or width is None:
            dynamic = ops.shape(inputs)
            height, width = dynamic[1], dynamic[2]
        x = ops.reshape(inputs, (-1, height, width, self.groups, channels // self.groups))
        x = ops.transpose(x, (0, 1, 2, 4, 3))
        return ops.reshape(x, (-1, height, width, channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="keras_cnn")
class ChannelSplit(keras.layers.Layer):
    """Split the channels in two halves (ShuffleNet v2's channel split, CSPNet's partial
    stage); returns both. One SPLIT op in TFLite.

    Example:
        >>> import numpy as np
        >>> left, right = ChannelSplit()(np.zeros((1, 2, 2, 8), "float32"))
        >>> left.shape, right.shape
        ((1, 2, 2, 4), (1, 2, 2, 4))
    """

    def call(self, inputs):
        left, right = ops.split(inputs, 2, axis=-1)
        return left, right

    def compute_output_shape(self, input_shape):
        half = (*input_shape[:-1], input_shape[-1] // 2)
        return half, half
