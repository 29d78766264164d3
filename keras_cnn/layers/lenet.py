"""The layers of LeNet-5 that Keras lacks (LeCun et al. 1998, section II.B).

LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document recognition",
Proc. IEEE 1998, http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf

- :class:`TrainableSubsampling` (S2, S4): the four inputs of a 2x2 window are summed, multiplied
  by a trainable coefficient and shifted by a trainable bias, one pair per map (2 params a map).
- :class:`PartialConv2D` (C3): a convolution in which each output map sees only the input maps
  of a connection table (Table I of the paper): 1,516 params instead of 2,416.
- :class:`EuclideanRBF` (output): ``y_i = sum_j (x_j - w_ij)^2`` against fixed, non-trainable
  codes, one per class.
"""

import keras
import numpy as np
from keras import ops

#: Table I of the paper: the S2 maps (0-5) each C3 map (0-15) is connected to.
LENET5_C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


@keras.saving.register_keras_serializable(package="keras_cnn")
class TrainableSubsampling(keras.layers.Layer):
    """LeNet-5 subsampling: ``coefficient[c] * sum(2x2 window) + bias[c]`` per map.

    Example:
        >>> import numpy as np
        >>> TrainableSubsampling()(np.ones((1, 4, 4, 3), "float32")).shape
        (1, 2, 2, 3)
    """

    def __init__(self, pool_size=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = pool_size

    def build(self, input_shape):
        channels = input_shape[-1]
        self.coefficient = self.add_weight(shape=(channels,), initializer="ones", name="coefficient")
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")

    def call(self, inputs):
        window_sum = ops.average_pool(inputs, self.pool_size, self.pool_size, padding="valid") * float(
            self.pool_size**2)
        return window_sum * self.coefficient + self.bias

    def compute_output_shape(self, input_shape):
        down = lambda s: None if s is None else s // self.pool_size  # noqa: E731
        return (input_shape[0], down(input_shape[1]), down(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package="keras_cnn")
class PartialConv2D(keras.layers.Layer):
    """Convolution whose output map ``o`` sees only the input maps ``connection_table[o]``.

    Only connected kernels are weights (``sum(len(t)) * k * k`` plus one bias a map); the full
    kernel is gathered from them with a static index, so the layer runs as one convolution.

    Args:
        connection_table: for each output map, the input maps it reads.
        kernel_size: square kernel size.

    Example:
        >>> import numpy as np
        >>> c3 = PartialConv2D(LENET5_C3_TABLE, 5)
        >>> c3(np.ones((1, 14, 14, 6), "float32")).shape
        (1, 10, 10, 16)
        >>> c3.count_params()
        1516
    """

    def __init__(self, connection_table, kernel_size=5, **kwargs):
        super().__init__(**kwargs)
        self.connection_table = tuple(tuple(int(i) for i in row) for row in connection_table)
        self.kernel_size = int(kernel_size)
        if not self.connection_table or any(len(row) == 0 for row in self.connection_table):
            raise ValueError("PartialConv2D: every output map needs at least one input map")

    def build(self, input_shape):
        in_channels = input_shape[-1]
        bad = sorted({i for row in self.connection_table for i in row if not 0 <= i < in_channels})
        if bad:
            raise ValueError(f"PartialConv2D: connection table names input maps {bad}, but the input has {in_channels}")
        connections = sum(len(row) for row in self.connection_table)
        k = self.kernel_size
        fan_in = connections / len(self.connection_table) * k * k
        limit = float(np.sqrt(3.0 / fan_in))
        self.connected_kernel = self.add_weight(
            shape=(k, k, connections), initializer=keras.initializers.RandomUniform(-limit, limit),
            name="connected_kernel")
        self.bias = self.add_weight(shape=(len(self.connection_table),), initializer="zeros", name="bias")
        # index[i, o] points into connected_kernel, or at the extra zero slice when not connected.
        index = np.full((in_channels, len(self.connection_table)), connections, dtype="int32")
        position = 0
        for out_map, row in enumerate(self.connection_table):
            for in_map in row:
                index[in_map, out_map] = position
                position += 1
        self._gather_index = index.reshape(-1)
        self._in_channels = in_channels

    def full_kernel(self):
        """The dense (k, k, in, out) kernel with zeros where maps are not connected."""
        k = self.kernel_size
        zeros = ops.zeros((k, k, 1), dtype=self.connected_kernel.dtype)
        padded = ops.concatenate([self.connected_kernel, zeros], axis=-1)
        full = ops.take(padded, self._gather_index, axis=2)
        return ops.reshape(full, (k, k, self._in_channels, len(self.connection_table)))

    def call(self, inputs):
        kernel = ops.cast(self.full_kernel(), inputs.dtype)
        return ops.conv(inputs, kernel, strides=1, padding="valid") + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        shrink = lambda s: None if s is None else s - self.kernel_size + 1  # noqa: E731
        return (input_shape[0], shrink(input_shape[1]), shrink(input_shape[2]), len(self.connection_table))

    def get_config(self):
        return {**super().get_config(), "connection_table": [list(r) for r in self.connection_table],
                "kernel_size": self.kernel_size}


def lenet5_codes(num_classes, code_size=84, seed=1998):
    """Fixed +-1 codes for the RBF units.

    The paper draws each digit's code as a stylized 7x12 bitmap of the character; those bitmaps
    are not published as data, so the default codes are reproducible pseudo-random +-1 vectors
    (a documented deviation: same shape, same values set, same role). Pass ``codes=`` to
    :class:`EuclideanRBF` to use your own.
    """
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([-1.0, 1.0], "float32"), size=(num_classes, code_size))


@keras.saving.register_keras_serializable(package="keras_cnn")
class EuclideanRBF(keras.layers.Layer):
    """Output layer of LeNet-5: the squared distance of the input to each class's fixed code.

    ``y_i = sum_j (x_j - code_ij)^2``; the smallest penalty wins. The codes are a non-trainable
    weight, so they are saved with the model.

    Args:
        num_classes: number of RBF units.
        codes: optional (num_classes, features) array; default :func:`lenet5_codes`.
        as_logits: return the negated penalties, so the largest value wins and a softmax turns
            them into probabilities (``softmax(-y)`` is the paper's loss without its constant
            rejection class).

    Example:
        >>> import numpy as np
        >>> rbf = EuclideanRBF(10)
        >>> rbf(np.zeros((2, 84), "float32")).shape
        (2, 10)
    """

    def __init__(self, num_classes, codes=None, as_logits=False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.as_logits = bool(as_logits)
        self._initial_codes = None if codes is None else np.asarray(codes, "float32")

    def build(self, input_shape):
        features = input_shape[-1]
        codes = self._initial_codes
        if codes is None:
            codes = lenet5_codes(self.num_classes, features)
        if codes.shape != (self.num_classes, features):
            raise ValueError(f"EuclideanRBF: codes must have shape {(self.num_classes, features)}, "
                             f"received {codes.shape}")
        self.codes = self.add_weight(shape=codes.shape, initializer=keras.initializers.Constant(codes),
                                     trainable=False, name="codes")

    def call(self, inputs):
        codes = ops.cast(self.codes, inputs.dtype)
        diff = ops.expand_dims(inputs, 1) - ops.expand_dims(codes, 0)
        penalties = ops.sum(ops.square(diff), axis=-1)
        return -penalties if self.as_logits else penalties

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "as_logits": self.as_logits}
