"""Local response normalization (AlexNet, section 3.3).

Krizhevsky et al., "ImageNet Classification with Deep Convolutional Neural Networks", NIPS 2012,
https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks

    b[c] = a[c] / (k + alpha * sum_{j=c-n//2}^{c+n//2} a[j]^2) ** beta

with the paper's k=2, n=5, alpha=1e-4, beta=0.75.

**The alpha convention.** The paper (and ``tf.nn.local_response_normalization``, whose
``depth_radius`` is ``n // 2`` and ``bias`` is ``k``) multiplies the *sum* of squares by alpha.
Caffe and PyTorch's ``nn.LocalResponseNorm`` multiply the *mean* (alpha / n). A Caffe/PyTorch
model with ``alpha=1e-4`` is this layer with ``alpha=1e-4 / n``, or ``alpha_over_size=True``.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cnn")
class LocalResponseNormalization(keras.layers.Layer):
    """Cross-channel local response normalization over the last (channel) axis.

    Args:
        size: window size n (odd, in channels).
        alpha: scale of the sum of squares (see the module docstring for the Caffe convention).
        beta: exponent.
        k: additive constant (``bias`` in TensorFlow).
        alpha_over_size: divide alpha by ``size`` (the Caffe / PyTorch convention).

    Example:
        >>> import numpy as np
        >>> lrn = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=2.0)
        >>> lrn(np.ones((1, 4, 4, 8), "float32")).shape
        (1, 4, 4, 8)
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, alpha_over_size=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(f"LocalResponseNormalization: size must be a positive odd integer, received {size!r}")
        self.size = size
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.k = float(k)
        self.alpha_over_size = bool(alpha_over_size)

    @property
    def effective_alpha(self):
        """alpha as it multiplies the *sum* of squares."""
        return self.alpha / self.size if self.alpha_over_size else self.alpha

    def call(self, inputs):
        if keras.backend.backend() == "tensorflow":
            # One builtin op (LOCAL_RESPONSE_NORMALIZATION) in TF graphs and TFLite files.
            import tensorflow as tf

            return tf.nn.local_response_normalization(
                inputs, depth_radius=self.size // 2, bias=self.k, alpha=self.effective_alpha, beta=self.beta
            )
        return self.reference_call(inputs)

    def reference_call(self, inputs):
        """The formula in ``keras.ops`` only (used on the JAX and torch backends)."""
        radius = self.size // 2
        channels = inputs.shape[-1]
        squared = ops.square(inputs)
        padded = ops.pad(squared, [[0, 0]] * (len(inputs.shape) - 1) + [[radius, radius]])
        window_sum = padded[..., 0:channels]
        for offset in range(1, self.size):
            window_sum = window_sum + padded[..., offset:offset + channels]
        return inputs / ops.power(self.k + self.effective_alpha * window_sum, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta,
                "k": self.k, "alpha_over_size": self.alpha_over_size}
