"""The option-A shortcut of the ResNet paper (He et al. 2016, https://arxiv.org/abs/1512.03385,
section 3.3 and the CIFAR nets of section 4.2): subsample, then zero-pad the new channels.

Example:
    >>> import numpy as np
    >>> from keras_cnn.layers import ZeroPadShortcut
    >>> ZeroPadShortcut(32, strides=2)(np.ones((1, 8, 8, 16), "float32")).shape
    (1, 4, 4, 32)
"""

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="keras_cnn")
class ZeroPadShortcut(layers.Layer):
    """Option A shortcut of the ResNet paper: subsample by ``strides`` and zero-pad channels."""

    def __init__(self, filters, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides

    def call(self, inputs):
        # x[:, ::s, ::s] written as a 1x1 max pool with stride s: the same values (a 1x1 window is the
        # identity), but one op TFLite's XNNPACK runs, where a strided slice left the exported file
        # with a STRIDED_SLICE op the exporter refuses.
        x = keras.ops.max_pool(inputs, 1, strides=self.strides, padding="valid") if self.strides > 1 else inputs
        extra = self.filters - inputs.shape[-1]
        return keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]]) if extra else x

    def compute_output_shape(self, input_shape):
        down = lambda s: None if s is None else (s + self.strides - 1) // self.strides  # noqa: E731
        return (input_shape[0], down(input_shape[1]), down(input_shape[2]), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}
