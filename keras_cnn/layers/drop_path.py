"""Stochastic depth / DropPath.

Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016, https://arxiv.org/abs/1603.09382
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cnn")
class DropPath(keras.layers.Layer):
    """Drop a whole residual branch per sample with probability ``rate`` while training.

    Kept samples are scaled by ``1 / (1 - rate)`` so the expectation is unchanged; at inference
    the layer is the identity.

    Args:
        rate: drop probability in [0, 1).
        seed: optional seed for the random mask.

    Example:
        >>> import numpy as np
        >>> DropPath(0.2)(np.ones((4, 2, 2, 3), "float32"), training=False).shape
        (4, 2, 2, 3)
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"DropPath: rate must be in [0, 1), received {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        mask_shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        mask = keras.random.uniform(mask_shape, seed=self.seed_generator, dtype=inputs.dtype)
        mask = ops.floor(mask + ops.cast(keep, inputs.dtype))
        return inputs * mask / ops.cast(keep, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
