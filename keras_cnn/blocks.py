"""Functional snippets the families share: conv-BN-activation, classifier heads, rounding.

Padding follows the reference implementations (PyTorch/Caffe): a ``k x k`` convolution with
stride > 1 pads ``(k - 1) // 2`` pixels on *every* side. Keras' ``padding="same"`` pads
asymmetrically at stride 2 (nothing on the top/left for even inputs), which shifts every
feature map by half a pixel and would stop reference weights from giving the same outputs.
"""

from __future__ import annotations

import difflib

from keras import layers

from keras_cnn.layers.adaptive_pool import AdaptiveAveragePooling2D
from keras_cnn.layers.channels import make_divisible  # re-exported: blocks is where models look for it

#: BatchNorm settings of torchvision/timm (PyTorch momentum 0.1 is Keras momentum 0.9).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def activation_layer(activation, name=None):
    """The activation layer for ``activation``, or None (no layer) when ``activation`` is None.

    ``activation`` may be:

    - a name Keras knows (``"relu"``, ``"relu6"``, ``"silu"``, ``"hard_swish"``, ...) or a plain
      function: a ``layers.Activation`` of it;
    - ``("leaky_relu", slope)``: a ``layers.LeakyReLU`` with that negative slope (Darknet 0.1,
      timm's CSPNet 0.01). The bare name ``"leaky_relu"`` stays Keras' function (slope 0.2);
    - a Layer class (``layers.ReLU``, ``layers.PReLU``, ...): instantiated as ``cls(name=name)``;
    - a Layer instance: used as it is (its own name; do not share one instance between calls).

    Example:
        >>> activation_layer(("leaky_relu", 0.1), name="act").negative_slope
        0.1
    """
    if activation is None:
        return None
    if isinstance(activation, layers.Layer):
        return activation
    if isinstance(activation, type) and issubclass(activation, layers.Layer):
        return activation(name=name)
    if isinstance(activation, tuple):
        kind, *args = activation
        if kind == "leaky_relu" and len(args) == 1:
            return layers.LeakyReLU(negative_slope=args[0], name=name)
        raise ValueError(f"activation: a tuple must be ('leaky_relu', slope), received {activation!r}")
    return layers.Activation(activation, name=name)


def apply_activation(x, activation, name=None):
    """``x`` through :func:`activation_layer` (unchanged when ``activation`` is None)."""
    act = activation_layer(activation, name=name)
    return act(x) if act is not None else x


def symmetric_conv(x, filters, kernel_size, *, strides=1, groups=1, dilation=1, use_bias=True,
                   padding="same", kernel_initializer="he_normal", name=None):
    """``Conv2D`` that pads like PyTorch: ``padding="same"`` becomes explicit symmetric padding.

    ``padding`` may be ``"same"`` (symmetric ``(k-1)//2 * dilation``), ``"valid"`` or an int.
    """
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if padding == "same":
        pad = (((kh - 1) // 2) * dilation, ((kw - 1) // 2) * dilation)
    elif padding == "valid":
        pad = (0, 0)
    else:
        pad = (padding, padding) if isinstance(padding, int) else tuple(padding)
    conv_padding = "valid"
    if strides == 1 and padding == "same" and kh % 2 and kw % 2:
        conv_padding = "same"  # symmetric already, and one op fewer in the graph
    elif pad != (0, 0):
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad" if name else None)(x)
    return layers.Conv2D(
        filters, (kh, kw), strides=strides, padding=conv_padding, groups=groups,
        dilation_rate=dilation, use_bias=use_bias, kernel_initializer=kernel_initializer, name=name,
    )(x)


def symmetric_conv_dw(x, strides, depth_multiplier=1, kernel_size=3, name=None):
    """Depthwise conv (no bias) padded symmetrically like the reference implementations."""
    pad = (kernel_size - 1) // 2
    padding = "same"
    if strides > 1:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
        padding = "valid"
    return layers.DepthwiseConv2D(kernel_size, strides=strides, padding=padding,
                                  depth_multiplier=depth_multiplier, use_bias=False, name=name)(x)


def batch_norm(x, name=None, epsilon=BN_EPSILON, gamma_initializer="ones"):
    """BatchNormalization with the reference epsilon and momentum."""
    return layers.BatchNormalization(
        epsilon=epsilon, momentum=BN_MOMENTUM, gamma_initializer=gamma_initializer, name=name
    )(x)


def conv_bn_act(x, filters, kernel_size, *, strides=1, groups=1, dilation=1, activation="relu",
                padding="same", use_bias=False, bn_epsilon=BN_EPSILON, bn_gamma_initializer="ones", name=None):
    """Conv (no bias) -> BatchNorm -> activation, the unit of almost every post-2015 CNN.

    Layers are named ``{name}_conv`` (``{name}_conv_pad`` when padded), ``{name}_bn`` and
    ``{name}_act``. ``activation`` is anything :func:`activation_layer` takes (None: no
    activation, e.g. the last conv of a residual branch); ``bn_gamma_initializer="zeros"`` starts
    a residual branch at zero (``zero_init_residual``).
    """
    x = symmetric_conv(x, filters, kernel_size, strides=strides, groups=groups, dilation=dilation,
                       use_bias=use_bias, padding=padding, name=f"{name}_conv" if name else None)
    x = batch_norm(x, name=f"{name}_bn" if name else None, epsilon=bn_epsilon, gamma_initializer=bn_gamma_initializer)
    return apply_activation(x, activation, name=f"{name}_act" if name else None)


def conv_act(x, filters, kernel_size, *, strides=1, groups=1, activation="relu", padding="same",
             name=None):
    """Conv (with bias) -> activation, for the pre-BatchNorm nets (AlexNet, VGG, GoogLeNet)."""
    x = symmetric_conv(x, filters, kernel_size, strides=strides, groups=groups, use_bias=True,
                       padding=padding, name=name)
    return apply_activation(x, activation, name=f"{name}_act" if name else None)


def predictions(x, num_classes, classifier_activation, *, name="predictions", use_bias=True):
    """The output Dense layer; float32 so mixed-precision models return float32 probabilities."""
    return layers.Dense(num_classes, activation=classifier_activation, use_bias=use_bias,
                        dtype="float32", name=name)(x)


def classifier_head(x, include_top, pooling, num_classes, classifier_activation, *, pool="avg", hidden=None,
                    dropout=None, dropout_name="head_dropout", logits=None, name="predictions"):
    """The output of every family: the keras.applications contract in one place.

    ``include_top=False`` returns :func:`feature_pooling` of the features (``pooling`` None: the
    feature map, ``"avg"``/``"max"``: a pooled vector); nothing below is built. Otherwise, in order:

    1. ``pool``: ``"avg"`` global average pooling (``avg_pool``); ``"flatten"`` a ``flatten``
       layer (LeNet); an int ``g``: adaptive average pooling to ``g x g`` (``adaptive_pool``) then
       ``flatten`` (AlexNet, VGG); None: nothing (classifiers that are 1x1 convs).
    2. ``hidden``: ``hidden(x)``, the family's layers before the classifier (its FC layers).
    3. ``dropout``: a ``Dropout(dropout)`` named ``dropout_name``, built for any rate, 0.0
       included; None builds no layer.
    4. The classifier: ``Dense(num_classes, classifier_activation)`` in float32 named ``name``; or,
       when ``logits`` is given, ``logits(x)`` (a 1x1-conv classifier and its pooling, an RBF
       layer) followed by ``Activation(classifier_activation)`` in float32 named ``name``.
    """
    if not include_top:
        return feature_pooling(x, pooling)
    if pool == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pool is not None:
        if pool != "flatten":
            x = AdaptiveAveragePooling2D(pool, name="adaptive_pool")(x)
        x = layers.Flatten(name="flatten")(x)
    if hidden is not None:
        x = hidden(x)
    if dropout is not None:
        x = layers.Dropout(dropout, name=dropout_name)(x)
    if logits is None:
        return predictions(x, num_classes, classifier_activation, name=name)
    return layers.Activation(classifier_activation, dtype="float32", name=name)(logits(x))


def feature_pooling(x, pooling):
    """``pooling`` of keras.applications for ``include_top=False``."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def max_pool(x, pool_size=3, strides=2, *, padding=0, ceil_mode=False, pad_value=0.0, name=None):
    """Max pooling with PyTorch's explicit ``padding`` and ``ceil_mode``.

    ``ceil_mode`` adds the extra bottom/right row and column that make the output size round
    up (torchvision's SqueezeNet and GoogLeNet). ``pad_value`` is what fills the padding: zeros
    (``ZeroPadding2D``), exact for non-negative inputs (pools after a ReLU), or PyTorch's
    ``float("-inf")``, which a pool reading a raw convolution, a BatchNorm or a leaky ReLU needs
    (zeros would win where the input is negative). The -inf padding is never materialized (an
    int8 TFLite calibration cannot take an infinite value): for an odd ``pool_size`` with padding
    ``pool_size // 2``, PyTorch's windows are those of a stride-1 "same" max-pool (which pads
    with -inf itself: padded pixels never win) taken at every ``strides``-th position, so that is
    what is built: ``{name}_same`` (stride 1) then ``{name}``, a 1x1 pool with the stride.
    """
    if pad_value not in (0, float("-inf")):
        raise ValueError(f"{name}: pad_value must be 0.0 or float('-inf'), received {pad_value!r}")
    if pad_value and (padding or ceil_mode):
        if ceil_mode or pool_size % 2 == 0 or padding != pool_size // 2:
            raise ValueError(f"{name}: -inf padding is built for an odd pool_size with padding pool_size // 2 and "
                             f"no ceil_mode, received pool_size={pool_size}, padding={padding}, ceil_mode={ceil_mode}")
        if strides == 1:
            return layers.MaxPooling2D(pool_size, 1, padding="same", name=name)(x)
        x = layers.MaxPooling2D(pool_size, 1, padding="same", name=f"{name}_same" if name else None)(x)
        return layers.MaxPooling2D(1, strides, name=name)(x)
    height, width = x.shape[1], x.shape[2]
    extra = [0, 0]
    if ceil_mode:
        for axis, size in enumerate((height, width)):
            if size is None:
                raise ValueError(f"{name}: ceil_mode pooling needs a static input size, received {tuple(x.shape)}")
            padded = size + 2 * padding
            out_ceil = -(-(padded - pool_size) // strides) + 1
            if (out_ceil - 1) * strides >= size + padding:  # last window must start inside the input
                out_ceil -= 1
            extra[axis] = max(0, (out_ceil - 1) * strides + pool_size - padded)
    if padding or any(extra):
        pads = ((padding, padding + extra[0]), (padding, padding + extra[1]))
        x = layers.ZeroPadding2D(pads, name=f"{name}_pad" if name else None)(x)
    return layers.MaxPooling2D(pool_size, strides, name=name)(x)


def check_positive_int(value, what, name):
    """Raise ``ValueError`` unless ``value`` is a positive int (shared argument validation)."""
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: {what} must be a positive integer, received {value!r}")
    return value


def check_choice(value, allowed, what, name):
    """Raise ``ValueError`` naming ``what``, the received value and the allowed ones."""
    try:
        known = value in allowed
    except TypeError:  # an unhashable value looked up in a dict of choices
        known = False
    if not known:
        close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"{name}: {what} must be one of {list(allowed)}, received {value!r}.{hint}")
    return value


def check_range(value, low, high, what, name):
    """Raise ``ValueError`` unless ``low <= value <= high``."""
    if not isinstance(value, (int, float)) or not (low <= value <= high):
        raise ValueError(f"{name}: {what} must be a number in [{low}, {high}], received {value!r}")
    return value


__all__ = [
    "BN_EPSILON", "BN_MOMENTUM", "make_divisible", "symmetric_conv", "symmetric_conv_dw", "batch_norm", "conv_bn_act",
    "conv_act", "activation_layer", "apply_activation", "predictions", "classifier_head",
    "feature_pooling", "check_choice", "check_range", "check_positive_int", "max_pool",
]
