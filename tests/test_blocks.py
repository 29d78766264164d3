"""keras_cnn.blocks: the activation factory, conv-BN-activation and the classifier head every family uses."""

import keras
import numpy as np
import pytest
from keras import layers

from keras_cnn import blocks
from keras_cnn.blocks import activation_layer, classifier_head, conv_bn_act
from keras_cnn.layers import channels


def test_make_divisible_lives_in_layers_and_blocks_reexports_it():
    assert blocks.make_divisible is channels.make_divisible
    assert "make_divisible" in blocks.__all__
    assert [channels.make_divisible(v) for v in (18, 11.2, 10, 1280 * 1.4)] == [24, 16, 16, 1792]


def test_activation_layer_accepts_names_slopes_classes_and_layers():
    assert activation_layer(None) is None
    relu = activation_layer("relu", name="a")
    assert isinstance(relu, layers.Activation) and relu.name == "a"
    leaky = activation_layer(("leaky_relu", 0.1), name="b")
    assert isinstance(leaky, layers.LeakyReLU) and leaky.negative_slope == pytest.approx(0.1) and leaky.name == "b"
    assert isinstance(activation_layer("leaky_relu"), layers.Activation)  # the bare name stays Keras' function
    out = activation_layer(layers.ReLU, name="c")
    assert type(out) is layers.ReLU and out.name == "c"
    prelu = layers.PReLU(name="mine")
    assert activation_layer(prelu, name="ignored") is prelu
    assert isinstance(activation_layer(keras.activations.silu), layers.Activation)
    with pytest.raises(ValueError, match="leaky_relu"):
        activation_layer(("elu", 1.0))


def test_conv_bn_act_names_its_layers_after_the_unit():
    inputs = keras.Input((8, 8, 3))
    x = conv_bn_act(inputs, 4, 3, strides=2, activation=("leaky_relu", 0.01), name="u")
    x = conv_bn_act(x, 4, 1, activation=None, bn_gamma_initializer="zeros", name="v")
    model = keras.Model(inputs, x)
    assert [l.name for l in model.layers[1:]] == ["u_conv_pad", "u_conv", "u_bn", "u_act", "v_conv", "v_bn"]
    assert isinstance(model.get_layer("u_act"), layers.LeakyReLU)
    assert float(keras.ops.max(keras.ops.abs(model.get_layer("v_bn").gamma))) == 0.0


def _head(include_top=True, pooling=None, **kwargs):
    inputs = keras.Input((8, 8, 16))
    out = classifier_head(inputs, include_top, pooling, 5, "softmax", **kwargs)
    return keras.Model(inputs, out)


@pytest.mark.parametrize("pooling, shape", [(None, (None, 8, 8, 16)), ("avg", (None, 16)), ("max", (None, 16))])
def test_classifier_head_without_top_is_feature_pooling(pooling, shape):
    model = _head(False, pooling, hidden=lambda y: layers.Dense(7, name="never")(y), dropout=0.5)
    assert model.output_shape == shape
    assert "never" not in [l.name for l in model.layers] and "predictions" not in [l.name for l in model.layers]


def test_classifier_head_builds_its_steps_in_order():
    names = lambda model: [l.name for l in model.layers[1:]]  # noqa: E731
    assert names(_head()) == ["avg_pool", "predictions"]
    assert names(_head(dropout=0.0)) == ["avg_pool", "head_dropout", "predictions"]  # a rate, 0 included, is a layer
    assert names(_head(pool=2, hidden=lambda y: layers.Dense(6, name="fc1")(y), dropout=0.1, dropout_name="d")) == [
        "adaptive_pool", "flatten", "fc1", "d", "predictions"]
    assert names(_head(pool="flatten")) == ["flatten", "predictions"]
    conv = _head(pool=None, logits=lambda y: layers.GlobalAveragePooling2D(name="avg_pool")(
        layers.Conv2D(5, 1, name="classifier_conv")(y)))
    assert names(conv) == ["classifier_conv", "avg_pool", "predictions"]
    assert isinstance(conv.get_layer("predictions"), layers.Activation) and conv.output_shape == (None, 5)
    assert _head().get_layer("predictions").dtype_policy.name == "float32"


@pytest.mark.parametrize("size", [6, 7])
def test_max_pool_minus_inf_padding_is_pytorch_padding(size):
    """PyTorch's MaxPool2d(3, 2, padding=1) pads with -inf; zeros would win on an all-negative map."""
    x = -1.0 - np.random.default_rng(0).uniform(size=(1, size, size, 2)).astype("float32")

    def pooled(**kwargs):
        inputs = keras.Input(x.shape[1:])
        model = keras.Model(inputs, blocks.max_pool(inputs, 3, 2, padding=1, name="pool", **kwargs))
        return model, keras.ops.convert_to_numpy(model(x))

    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=-np.inf)
    out = (size - 1) // 2 + 1
    expected = np.array([[padded[0, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(0, 1)) for j in range(out)]
                         for i in range(out)])[None]
    model, got = pooled(pad_value=float("-inf"))
    np.testing.assert_array_equal(got, expected)
    assert [l.name for l in model.layers[1:]] == ["pool_same", "pool"]  # no infinite constant in the graph
    model, got = pooled()
    assert isinstance(model.get_layer("pool_pad"), layers.ZeroPadding2D) and got.max() == 0.0
    with pytest.raises(ValueError, match="-inf padding"):
        blocks.max_pool(keras.Input((8, 8, 2)), 3, 2, padding=0, ceil_mode=True, pad_value=float("-inf"), name="c")
