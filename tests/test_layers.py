"""Each custom layer: its formula, its shape rules, its errors and its .keras round-trip.

This file runs on every backend (tests/test_backends.py reruns it with KERAS_BACKEND=jax), so
it uses NumPy references; TensorFlow appears only as an independent oracle for LRN.
"""

import keras
import numpy as np
import pytest
from conftest import randomize_batch_norm, trainable_count

import keras_cnn.layers as keras_cnn_layers
from keras_cnn.layers import (
    LENET5_C3_TABLE,
    ChannelShuffle,
    DropPath,
    EuclideanRBF,
    LocalResponseNormalization,
    PartialConv2D,
    RepVGGBlock,
    SqueezeExcite,
    TrainableSubsampling,
    hard_sigmoid,
    hard_swish,
    lecun_tanh,
)
from keras_cnn.layers.activations import h_sigmoid_reference, h_swish_reference


def roundtrip(layer, x, tmp_path):
    """Save a model holding ``layer`` as .keras, load it back, return both outputs."""
    inputs = keras.Input(shape=x.shape[1:])
    outputs = layer(inputs)
    model = keras.Model(inputs, list(outputs) if isinstance(outputs, tuple) else outputs)
    if any(isinstance(l, keras.layers.BatchNormalization) for l in _sublayers(layer)):
        randomize_batch_norm(layer)
    expected = np.concatenate([np.ravel(keras.ops.convert_to_numpy(o))
                               for o in keras.tree.flatten(model(x, training=False))])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    got = np.concatenate([np.ravel(keras.ops.convert_to_numpy(o))
                          for o in keras.tree.flatten(loaded(x, training=False))])
    return expected, got


def _sublayers(layer):
    return [v for v in vars(layer).values() if isinstance(v, keras.layers.Layer)]


# ---------------------------------------------------------------- local response normalization
def lrn_numpy(x, size, alpha, beta, k):
    radius = size // 2
    sq = np.pad(x**2, [(0, 0)] * 3 + [(radius, radius)])
    window = sum(sq[..., i:i + x.shape[-1]] for i in range(size))
    return x / (k + alpha * window) ** beta


def test_lrn_matches_tf_nn_and_formula(rng):
    import tensorflow as tf

    x = rng.normal(0, 3, (2, 5, 5, 12)).astype("float32")
    layer = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=2.0)
    ours = keras.ops.convert_to_numpy(layer(x))
    theirs = tf.nn.local_response_normalization(x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours, lrn_numpy(x, 5, 1e-4, 0.75, 2.0), rtol=1e-5, atol=1e-6)
    # the keras.ops path (used on JAX/torch) computes the same thing
    reference = keras.ops.convert_to_numpy(layer.reference_call(keras.ops.convert_to_tensor(x)))
    np.testing.assert_allclose(reference, theirs, rtol=1e-5, atol=1e-6)


def test_lrn_caffe_alpha_convention(rng):
    x = rng.normal(0, 10, (1, 3, 3, 8)).astype("float32")
    caffe = LocalResponseNormalization(size=5, alpha=1e-3, alpha_over_size=True)
    paper = LocalResponseNormalization(size=5, alpha=1e-3 / 5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(caffe(x)), keras.ops.convert_to_numpy(paper(x)), rtol=1e-6)
    assert caffe.effective_alpha == pytest.approx(2e-4)


def test_lrn_rejects_even_size():
    with pytest.raises(ValueError, match="size must be a positive odd integer, received 4"):
        LocalResponseNormalization(size=4)


# ---------------------------------------------------------------- channel shuffle
def test_channel_shuffle_interleaves_groups(rng):
    x = rng.normal(size=(2, 3, 4, 12)).astype("float32")
    out = keras.ops.convert_to_numpy(ChannelShuffle(3)(x))
    expected = x.reshape(2, 3, 4, 3, 4).transpose(0, 1, 2, 4, 3).reshape(2, 3, 4, 12)
    np.testing.assert_array_equal(out, expected)
    # channel c of group g lands at position c * groups + g
    assert np.array_equal(out[..., 1], x[..., 4])


def test_channel_shuffle_bad_groups():
    with pytest.raises(ValueError, match="divisible by groups=5"):
        ChannelShuffle(5)(np.zeros((1, 2, 2, 12), "float32"))
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        ChannelShuffle(0)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="inspects a TF graph")
def test_channel_shuffle_graph_reads_no_runtime_shape():
    import tensorflow as tf

    layer = ChannelShuffle(4)
    fn = tf.function(lambda t: layer(t)).get_concrete_function(tf.TensorSpec([None, 7, 7, 16]))
    ops = {op.type for op in fn.graph.get_operations()}
    assert "Shape" not in ops and "StridedSlice" not in ops and "Pack" not in ops, ops


# ---------------------------------------------------------------- activations
def test_hard_swish_and_sigmoid_formulas():
    x = np.linspace(-6, 6, 97).astype("float32")
    relu6 = np.clip(x + 3, 0, 6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(hard_swish(x)), x * relu6 / 6, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(hard_sigmoid(x)), relu6 / 6, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(h_swish_reference(x)), x * relu6 / 6, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(h_sigmoid_reference(x)), relu6 / 6, atol=1e-6)
    assert hard_swish is keras.activations.hard_swish  # Keras' own, so TFLite fuses HARD_SWISH


def test_lecun_tanh():
    x = np.array([-1.0, 0.0, 1.0], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(lecun_tanh(x)), 1.7159 * np.tanh(2 * x / 3), rtol=1e-6)


# ---------------------------------------------------------------- squeeze-excite
def test_squeeze_excite_formula_and_params(rng):
    x = rng.normal(size=(2, 4, 4, 32)).astype("float32")
    se = SqueezeExcite(ratio=1 / 16)
    out = keras.ops.convert_to_numpy(se(x))
    assert trainable_count(se) == 32 * 2 + 2 + 2 * 32 + 32
    w1, b1 = (keras.ops.convert_to_numpy(w) for w in se.reduce.weights)
    w2, b2 = (keras.ops.convert_to_numpy(w) for w in se.expand.weights)
    s = np.maximum(x.mean(axis=(1, 2)) @ w1[0, 0] + b1, 0) @ w2[0, 0] + b2
    expected = x * (1 / (1 + np.exp(-s)))[:, None, None, :]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_squeeze_excite_mobilenet_rounding():
    se = SqueezeExcite(ratio=0.25, divisor=8, gate="hard_sigmoid")
    se.build((None, 4, 4, 72))
    assert se.reduce.filters == 24  # make_divisible(72 / 4, 8)
    with pytest.raises(ValueError, match="ratio must be in"):
        SqueezeExcite(ratio=0)


# ---------------------------------------------------------------- RepVGG block
@pytest.mark.parametrize("in_ch,filters,strides,groups",
                         [(16, 16, 1, 1), (16, 32, 2, 1), (16, 16, 1, 4), (8, 16, 2, 2)])
def test_repvgg_fusion_matches_train_time_block(in_ch, filters, strides, groups, rng):
    block = RepVGGBlock(filters, strides=strides, groups=groups)
    x = rng.normal(size=(2, 9, 9, in_ch)).astype("float32")
    block(x)
    for w in block.conv3.weights + block.conv1.weights:
        w.assign(rng.normal(0, 0.3, w.shape))
    randomize_batch_norm(block, seed=1)
    expected = keras.ops.convert_to_numpy(block(x, training=False))
    fused = block.fused_copy()
    assert fused.deploy and trainable_count(fused) == 9 * in_ch // groups * filters + filters
    got = keras.ops.convert_to_numpy(fused(x))
    # float32 rounding of maps up to ~6: relative (torch's conv sums in another order: 1.05e-5 absolute there)
    assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
    assert block.has_identity == (in_ch == filters and strides == 1)


def test_repvgg_symmetric_padding_at_stride_2(rng):
    x = rng.normal(size=(1, 8, 8, 4)).astype("float32")
    block = RepVGGBlock(4, strides=2, deploy=True)
    assert block(x).shape == (1, 4, 4, 4)
    kernel, bias = block.fused.get_weights()
    xp = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    manual = sum(xp[0, i:i + 7:2, j:j + 7:2, :] @ kernel[i, j] for i in range(3) for j in range(3)) + bias
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(x))[0], np.maximum(manual, 0), rtol=1e-4, atol=1e-5)


def test_repvgg_bad_groups():
    with pytest.raises(ValueError, match="groups must be a positive integer dividing filters=16, received 3"):
        RepVGGBlock(16, groups=3)
    with pytest.raises(ValueError, match="strides must be 1 or 2"):
        RepVGGBlock(16, strides=3)


# ---------------------------------------------------------------- DropPath
def test_drop_path_identity_at_inference_and_drops_whole_samples():
    x = np.ones((512, 2, 2, 3), "float32")
    layer = DropPath(0.25, seed=3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    per_sample = out.reshape(512, -1)
    assert set(np.unique(per_sample)) <= {0.0, np.float32(1 / 0.75)}
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))  # whole samples, not pixels
    assert 0.15 < (per_sample[:, 0] == 0).mean() < 0.35
    with pytest.raises(ValueError, match="rate must be in"):
        DropPath(1.0)


# ---------------------------------------------------------------- LeNet-5 layers
def test_trainable_subsampling_formula(rng):
    x = rng.normal(size=(1, 4, 4, 2)).astype("float32")
    layer = TrainableSubsampling()
    layer.build(x.shape)
    layer.set_weights([np.array([2.0, -1.0], "float32"), np.array([0.5, 0.0], "float32")])
    out = keras.ops.convert_to_numpy(layer(x))
    window_sum = x.reshape(1, 2, 2, 2, 2, 2).sum(axis=(2, 4))
    np.testing.assert_allclose(out, window_sum * [2.0, -1.0] + [0.5, 0.0], rtol=1e-5, atol=1e-6)
    assert trainable_count(layer) == 4


def test_partial_conv_matches_masked_full_conv(rng):
    x = rng.normal(size=(2, 14, 14, 6)).astype("float32")
    layer = PartialConv2D(LENET5_C3_TABLE, 5)
    out = keras.ops.convert_to_numpy(layer(x))
    assert trainable_count(layer) == 1516
    kernel = keras.ops.convert_to_numpy(layer.full_kernel())
    mask = np.zeros((6, 16), bool)
    for o, row in enumerate(LENET5_C3_TABLE):
        mask[list(row), o] = True
    assert np.all(kernel[:, :, ~mask] == 0) and np.all(kernel[:, :, mask] != 0)
    bias = keras.ops.convert_to_numpy(layer.bias)
    manual = np.stack([
        sum((x[:, i:i + 10, j:j + 10, :, None] * kernel[i, j]).sum(axis=3) for i in range(5) for j in range(5))
    ])[0] + bias
    np.testing.assert_allclose(out, manual, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"names input maps \[6\]"):
        PartialConv2D([(0, 6)], 5)(x)


def test_euclidean_rbf_penalties(rng):
    codes = rng.choice([-1.0, 1.0], size=(10, 84)).astype("float32")
    x = rng.normal(size=(3, 84)).astype("float32")
    rbf = EuclideanRBF(10, codes=codes)
    out = keras.ops.convert_to_numpy(rbf(x))
    np.testing.assert_allclose(out, ((x[:, None, :] - codes[None]) ** 2).sum(-1), rtol=1e-5)
    assert trainable_count(rbf) == 0  # the codes are fixed
    assert np.argmin(keras.ops.convert_to_numpy(rbf(codes[[4]]))) == 4
    logits = keras.ops.convert_to_numpy(EuclideanRBF(10, codes=codes, as_logits=True)(x))
    np.testing.assert_allclose(logits, -out, rtol=1e-6)


# ---------------------------------------------------------------- .keras round-trips
ROUNDTRIP_CASES = {
    "lrn": (lambda: LocalResponseNormalization(5, 1e-3, 0.75, 2.0), (2, 6, 6, 8)),
    "channel_shuffle": (lambda: ChannelShuffle(4), (2, 5, 5, 16)),
    "squeeze_excite": (lambda: SqueezeExcite(ratio=0.25, divisor=8, gate="hard_sigmoid"), (2, 5, 5, 16)),
    "repvgg": (lambda: RepVGGBlock(16, groups=2), (2, 7, 7, 16)),
    "repvgg_deploy": (lambda: RepVGGBlock(16, strides=2, deploy=True), (2, 8, 8, 8)),
    "drop_path": (lambda: DropPath(0.3, seed=1), (2, 4, 4, 8)),
    "subsampling": (lambda: TrainableSubsampling(), (2, 8, 8, 6)),
    "partial_conv": (lambda: PartialConv2D(LENET5_C3_TABLE, 5), (2, 14, 14, 6)),
    "rbf": (lambda: EuclideanRBF(10, as_logits=True), (2, 84)),
    "adaptive_pool": (lambda: keras_cnn_layers.AdaptiveAveragePooling2D(4), (2, 10, 10, 3)),
    "channel_split": (lambda: keras_cnn_layers.ChannelSplit(), (2, 3, 3, 8)),
}


@pytest.mark.parametrize("case", sorted(ROUNDTRIP_CASES))
def test_layer_keras_roundtrip_is_exact(case, tmp_path, rng):
    make, shape = ROUNDTRIP_CASES[case]
    x = rng.normal(size=shape).astype("float32")
    expected, loaded = roundtrip(make(), x, tmp_path)
    np.testing.assert_array_equal(expected, loaded)


# ---------------------------------------------------------------- adaptive average pooling
@pytest.mark.parametrize("size,out", [(13, 6), (6, 6), (14, 7), (3, 7), (10, 4)])
def test_adaptive_average_pooling_matches_pytorch_bins(size, out, rng):
    from keras_cnn.layers import AdaptiveAveragePooling2D

    x = rng.normal(size=(2, size, size, 3)).astype("float32")
    got = keras.ops.convert_to_numpy(AdaptiveAveragePooling2D(out)(x))
    expected = np.zeros((2, out, out, 3), "float32")
    for i in range(out):
        for j in range(out):
            r0, r1 = (i * size) // out, -(-((i + 1) * size) // out)
            c0, c1 = (j * size) // out, -(-((j + 1) * size) // out)
            expected[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
