"""Adaptive average pooling (PyTorch's ``AdaptiveAvgPool2d``) for flattening heads.

torchvision's AlexNet and VGG pool to a fixed grid (6x6, 7x7) before the first Dense layer, so
the classifier has the same parameters at any input size; at the default input the layer is
the identity.
"""

import keras
import numpy as np
from keras import ops


def pooling_matrix(in_size, out_size):
    """(out, in) averaging matrix with PyTorch's bins [floor(i*in/out), ceil((i+1)*in/out))."""
    matrix = np.zeros((out_size, in_size), "float32")
    for i in range(out_size):
        start, end = (i * in_size) // out_size, -(-((i + 1) * in_size) // out_size)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@keras.saving.register_keras_serializable(package="keras_cnn")
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """Average-pool a (H, W) map to ``output_size`` bins, exactly as PyTorch does.

    Needs static H and W. When they divide evenly it is one AveragePooling op; otherwise two
    static matrix products (no runtime shape reads, so it converts to TFLite).

    Example:
        >>> import numpy as np
        >>> AdaptiveAveragePooling2D(7)(np.ones((1, 10, 10, 3), "float32")).shape
        (1, 7, 7, 3)
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
        if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
            raise ValueError(f"AdaptiveAveragePooling2D: output_size must be positive ints, received {output_size!r}")
        self.output_size = size

    def build(self, input_shape):
        height, width = input_shape[1:3]
        if height is None or width is None:
            raise ValueError("AdaptiveAveragePooling2D needs a static input height and width, "
                             f"received {tuple(input_shape)}")
        self._rows = pooling_matrix(height, self.output_size[0])
        self._cols = pooling_matrix(width, self.output_size[1])
        self._even = height % self.output_size[0] == 0 and width % self.output_size[1] == 0

    def call(self, inputs):
        height, width = inputs.shape[1:3]
        if (height, width) == self.output_size:
            return inputs
        if self._even:
            pool = (height // self.output_size[0], width // self.output_size[1])
            return ops.average_pool(inputs, pool, pool, padding="valid")
        rows = ops.convert_to_tensor(self._rows, dtype=inputs.dtype)
        cols = ops.convert_to_tensor(self._cols, dtype=inputs.dtype)
        x = ops.einsum("ih,bhwc->biwc", rows, inputs)
        return ops.einsum("jw,biwc->bijc", cols, x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "output_size": list(self.output_size)}
