"""One optimizer step on representative models: finite loss and non-zero gradients everywhere."""

import keras
import numpy as np
import pytest

import keras_cnn

# small enough to take a step in seconds at reduced input, one per family
REPRESENTATIVE = {
    "lenet5": (32, 32, 1),
    "lenet": (28, 28, 1),
}


@pytest.mark.parametrize("name", sorted(REPRESENTATIVE))
def test_one_step_gives_finite_loss_and_gradients(name):
    import tensorflow as tf

    shape = REPRESENTATIVE[name]
    model = keras_cnn.build(name, input_shape=shape, num_classes=10)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8,) + shape).astype("float32")
    y = rng.integers(0, 10, 8)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        outs = out if isinstance(out, (list, tuple)) else [out]
        loss = sum(loss_fn(y, o) for o in outs)
    grads = tape.gradient(loss, model.trainable_weights)
    assert np.isfinite(float(loss))
    for weight, grad in zip(model.trainable_weights, grads):
        assert grad is not None, weight.path
        assert np.any(np.asarray(grad) != 0), f"zero gradient for {weight.path}"
    model.compile(optimizer="sgd", loss=loss_fn)
    assert np.isfinite(model.train_on_batch(x, y))


@pytest.mark.parametrize("name", sorted(REPRESENTATIVE))
def test_model_keras_roundtrip(name, tmp_path):
    model = keras_cnn.build(name, input_shape=REPRESENTATIVE[name], num_classes=10)
    x = np.random.default_rng(1).uniform(0, 1, (2,) + REPRESENTATIVE[name]).astype("float32")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
