"""Structural re-parameterization for deployment.

:func:`reparameterize` returns a *new* functional model, the original untouched, in which

- every :class:`~keras_cnn.layers.RepVGGBlock` is its fused form: one 3x3 conv with bias
  (+ ReLU), the RepVGG paper's deploy model (https://arxiv.org/abs/2101.03697, section 3.4);
- with ``fold_batch_norm=True``, every BatchNormalization that directly follows a ``Conv2D`` or
  ``DepthwiseConv2D`` (and is that conv's only consumer) is folded into the conv's kernel and
  bias, so a phone runs one op instead of two.

Both are exact in inference mode up to float rounding.

Example:
    >>> import keras_cnn
    >>> model = keras_cnn.build("repvgg_a0", input_shape=(64, 64, 3), num_classes=10)
    >>> deployed = keras_cnn.reparameterize(model)
    >>> folded = keras_cnn.reparameterize(keras_cnn.build("mobilenet_v2"), fold_batch_norm=True)
"""

from __future__ import annotations

import keras

from keras_cnn.layers.repvgg import RepVGGBlock, fold_batch_norm

FOLDABLE_CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


def _single_producer(layer):
    """The layer whose output is ``layer``'s only input, or None."""
    nodes = layer._inbound_nodes
    if len(nodes) != 1 or len(nodes[0].parent_nodes) != 1:
        return None
    return nodes[0].parent_nodes[0].operation


def conv_bn_pairs(model) -> dict[str, str]:
    """``{batch_norm_name: conv_name}`` for every foldable Conv -> BatchNorm pair of ``model``."""
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        if layer.axis not in (-1, 3) or layer.center is False or layer.scale is False or len(layer._inbound_nodes) != 1:
            continue
        conv = _single_producer(layer)
        if (isinstance(conv, FOLDABLE_CONVS) and len(conv._inbound_nodes) == 1
                and len(conv._outbound_nodes) == 1 and conv.activation in (None, keras.activations.linear)):
            pairs[layer.name] = conv.name
    return pairs


def _folded_conv_weights(conv, bn):
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    bias = keras.ops.convert_to_numpy(conv.bias) if conv.use_bias else None
    bn_weights = [keras.ops.convert_to_numpy(w) for w in bn.weights]
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        # kernel (kh, kw, in, multiplier): output channel c * multiplier + m
        kh, kw, channels, multiplier = kernel.shape
        folded, new_bias = fold_batch_norm(kernel.reshape(kh, kw, channels * multiplier), bn_weights,
                                           bn.epsilon, bias)
        folded = folded.reshape(kh, kw, channels, multiplier)
    else:
        folded, new_bias = fold_batch_norm(kernel, bn_weights, bn.epsilon, bias)
    return [folded.astype("float32"), new_bias.astype("float32")]


def reparameterize(model, *, fold_batch_norm: bool = False, fuse_repvgg: bool = True):
    """Return the deploy form of ``model``: RepVGG blocks fused, Conv+BN optionally folded.

    Args:
        model: a functional Keras model (any ``keras_cnn.build`` result).
        fold_batch_norm: also fold each BatchNorm into the conv before it.
        fuse_repvgg: fuse RepVGG blocks (``False`` keeps their train-time branches, e.g. to
            measure what the fusion buys).

    Returns:
        A new functional model with the same inputs, outputs and layer names (folded BatchNorm
        layers are gone), its weights copied; the original model is not modified.
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise ValueError(f"reparameterize needs a functional keras.Model, received {type(model).__name__}")
    pairs = conv_bn_pairs(model) if fold_batch_norm else {}
    folded_convs = set(pairs.values())

    def clone_layer(layer):
        if fuse_repvgg and isinstance(layer, RepVGGBlock):
            return RepVGGBlock.from_config(layer.deploy_config())
        config = layer.get_config()
        if layer.name in folded_convs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    def call_layer(layer, *args, **kwargs):
        if layer.name in pairs:
            return args[0]  # the folded BatchNorm disappears from the graph
        return layer(*args, **kwargs)

    deployed = keras.models.clone_model(model, clone_function=clone_layer, call_function=call_layer)
    originals = {layer.name: layer for layer in model.layers}
    batch_norm_of = {conv: bn for bn, conv in pairs.items()}
    for layer in deployed.layers:
        source = originals[layer.name]
        if fuse_repvgg and isinstance(source, RepVGGBlock) and not source.deploy:
            layer.fused.set_weights(source.fused_weights())
        elif layer.name in batch_norm_of:
            layer.set_weights(_folded_conv_weights(source, originals[batch_norm_of[layer.name]]))
        elif source.weights:
            layer.set_weights(source.get_weights())
    return deployed
