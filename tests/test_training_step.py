"""One optimizer step on representative models: finite loss and non-zero gradients everywhere."""

import keras
import numpy as np
import pytest

import keras_cnn

# one per family, at reduced input so a step takes seconds
REPRESENTATIVE = {
    "lenet5": (32, 32, 1), "lenet": (28, 28, 1), "alexnet": (67, 67, 1), "zfnet": (53, 53, 3),
    "vgg11_bn": (32, 32, 3), "nin": (67, 67, 1), "googlenet": (64, 64, 3), "inception_v2": (32, 32, 3),
    "inception_v3": (75, 75, 3), "inception_v4": (75, 75, 3), "inception_resnet_v1": (75, 75, 3),
    "xception": (71, 71, 3), "resnet18": (32, 32, 3), "resnet50_v2": (32, 32, 3), "resnet20": (32, 32, 3),
    "se_resnext50_32x4d": (32, 32, 3), "densenet_bc_100_k12": (32, 32, 3), "cspresnext50": (64, 64, 3),
    "darknet19": (32, 32, 3), "darknet53": (32, 32, 3), "vovnet39": (32, 32, 3), "mobilenet_v1": (32, 32, 3),
    "mobilenet_v2": (32, 32, 3), "mobilenet_v3_small": (32, 32, 1), "shufflenet_v1_g3": (32, 32, 3),
    "shufflenet_v2_x0_5": (32, 32, 3), "squeezenet1_1": (32, 32, 3), "repvgg_a0": (32, 32, 3),
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
        outs = keras.tree.flatten(out)
        loss = sum(loss_fn(y, o) for o in outs)
    grads = tape.gradient(loss, model.trainable_weights)
    assert np.isfinite(float(loss))
    for weight, grad in zip(model.trainable_weights, grads):
        assert grad is not None, weight.path
        assert np.any(np.asarray(grad) != 0), f"zero gradient for {weight.path}"
    if name.startswith("lenet"):  # compiling a train step traces the graph: once per family file is enough
        model.compile(optimizer="sgd", loss=loss_fn)
        assert np.isfinite(model.train_on_batch(x, y))


@pytest.mark.parametrize("name", ["lenet5", "lenet"])  # the other families round-trip in their own files
def test_model_keras_roundtrip(name, tmp_path):
    model = keras_cnn.build(name, input_shape=REPRESENTATIVE[name], num_classes=10)
    x = np.random.default_rng(1).uniform(0, 1, (2,) + REPRESENTATIVE[name]).astype("float32")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
