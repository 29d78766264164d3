"""RepVGG block and its structural re-parameterization.

Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021,
https://arxiv.org/abs/2101.03697 (reference code: github.com/DingXiaoH/RepVGG).

Train time: ``relu(BN(conv3x3(x)) + BN(conv1x1(x)) + BN(x))`` (the identity branch only when
input and output shapes agree). Every branch is linear in inference mode, so the sum is one
3x3 convolution with bias: :func:`fuse_branches` computes it and a block built with
``deploy=True`` holds just that conv. ``keras_cnn.reparameterize(model)`` swaps every block of a
model for its fused form.
"""

import keras
import numpy as np
from keras import ops


def fold_batch_norm(kernel, bn_weights, epsilon, conv_bias=None):
    """Fold inference-mode BatchNorm into the preceding conv: returns (kernel, bias).

    ``kernel`` has its output channels last; ``bn_weights`` is ``[gamma, beta, mean, var]``.
    """
    gamma, beta, mean, var = (np.asarray(w, dtype="float64") for w in bn_weights)
    scale = gamma / np.sqrt(var + epsilon)
    bias = beta - mean * scale
    if conv_bias is not None:
        bias = bias + np.asarray(conv_bias, dtype="float64") * scale
    return np.asarray(kernel, dtype="float64") * scale, bias


def identity_kernel(channels, groups):
    """3x3 grouped kernel (3, 3, channels // groups, channels) equal to the identity map."""
    per_group = channels // groups
    kernel = np.zeros((3, 3, per_group, channels))
    for out_channel in range(channels):
        kernel[1, 1, out_channel % per_group, out_channel] = 1.0
    return kernel


@keras.saving.register_keras_serializable(package="keras_cnn")
class RepVGGBlock(keras.layers.Layer):
    """RepVGG block: 3x3+BN, 1x1+BN and identity-BN branches summed, then ReLU.

    Padding is symmetric (one pixel on every side, as in the reference), so the fused conv and
    weights converted from the PyTorch reference give the same outputs.

    Args:
        filters: output channels.
        strides: 1 or 2.
        groups: groups of the 3x3 and 1x1 convolutions.
        deploy: hold only the fused 3x3 conv with bias.
        activation: activation after the sum (None for the last block of a stem you build yourself).

    Example:
        >>> import numpy as np
        >>> block = RepVGGBlock(8)
        >>> x = np.random.rand(1, 6, 6, 8).astype("float32")
        >>> y = block(x)
        >>> fused = block.fused_copy()
        >>> bool(np.allclose(y, fused(x), atol=1e-5))
        True
    """

    def __init__(self, filters, strides=1, groups=1, deploy=False, activation="relu", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(f"RepVGGBlock: filters must be a positive integer, received {filters!r}")
        if strides not in (1, 2):
            raise ValueError(f"RepVGGBlock: strides must be 1 or 2, received {strides!r}")
        if not isinstance(groups, int) or groups < 1 or filters % groups:
            raise ValueError(f"RepVGGBlock: groups must be a positive integer dividing filters={filters}, "
                             f"received {groups!r}")
        self.filters = filters
        self.strides = strides
        self.groups = groups
        self.deploy = bool(deploy)
        self.activation = keras.activations.get(activation)
        self._activation_name = activation
        self.epsilon = 1e-5

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if in_channels % self.groups:
            raise ValueError(f"RepVGGBlock: input channels {in_channels} are not divisible by groups={self.groups}")
        self.has_identity = in_channels == self.filters and self.strides == 1
        policy = self.dtype_policy
        conv_args = dict(strides=self.strides, groups=self.groups, padding="valid", dtype=policy)
        padded = (None, None, None, in_channels)
        if self.deploy:
            self.fused = keras.layers.Conv2D(self.filters, 3, use_bias=True, name="fused", **conv_args)
            self.fused.build(padded)
            return
        bn_args = dict(epsilon=self.epsilon, momentum=0.9, dtype=policy)
        self.conv3 = keras.layers.Conv2D(self.filters, 3, use_bias=False, name="conv3x3", **conv_args)
        self.bn3 = keras.layers.BatchNormalization(name="bn3x3", **bn_args)
        self.conv1 = keras.layers.Conv2D(self.filters, 1, use_bias=False, name="conv1x1", **conv_args)
        self.bn1 = keras.layers.BatchNormalization(name="bn1x1", **bn_args)
        self.conv3.build(padded)
        self.conv1.build(input_shape)
        out = (None, None, None, self.filters)
        self.bn3.build(out)
        self.bn1.build(out)
        if self.has_identity:
            self.bn_identity = keras.layers.BatchNormalization(name="bn_identity", **bn_args)
            self.bn_identity.build(input_shape)

    def call(self, inputs, training=None):
        padded = ops.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]])
        if self.deploy:
            out = self.fused(padded)
        else:
            out = self.bn3(self.conv3(padded), training=training) + self.bn1(self.conv1(inputs), training=training)
            if self.has_identity:
                out = out + self.bn_identity(inputs, training=training)
        return self.activation(out) if self.activation is not None else out

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1:3]
        down = lambda s: None if s is None else (s - 1) // self.strides + 1  # noqa: E731
        return (input_shape[0], down(h), down(w), self.filters)

    def fused_weights(self):
        """The deploy conv's ``[kernel, bias]`` (NumPy, float32) equal to this block in inference."""
        if self.deploy:
            return [np.asarray(w) for w in self.fused.get_weights()]
        numpy = lambda weights: [ops.convert_to_numpy(w) for w in weights]  # noqa: E731
        k3, b3 = fold_batch_norm(ops.convert_to_numpy(self.conv3.kernel), numpy(self.bn3.weights), self.epsilon)
        k1, b1 = fold_batch_norm(ops.convert_to_numpy(self.conv1.kernel), numpy(self.bn1.weights), self.epsilon)
        kernel = k3 + np.pad(k1, [[1, 1], [1, 1], [0, 0], [0, 0]])
        bias = b3 + b1
        if self.has_identity:
            ki, bi = fold_batch_norm(identity_kernel(self.filters, self.groups),
                                     numpy(self.bn_identity.weights), self.epsilon)
            kernel, bias = kernel + ki, bias + bi
        return [kernel.astype("float32"), bias.astype("float32")]

    def deploy_config(self):
        """This block's config with ``deploy=True`` (same name, so model graphs keep their names)."""
        return {**self.get_config(), "deploy": True}

    def fused_copy(self):
        """A new built ``deploy=True`` block holding this block's fused weights."""
        fused = RepVGGBlock.from_config(self.deploy_config())
        fused.build(self._build_shapes_dict["input_shape"])
        fused.fused.set_weights(self.fused_weights())
        return fused

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides,
                "groups": self.groups, "deploy": self.deploy, "activation": self._activation_name}
