import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# triton (which PyPI's torch wheels depend on) loads an LLVM-based extension that crashes a process
# that has loaded TensorFlow first ("Fatal Python error: Segmentation fault" in triton/knobs.py when
# torchvision or timm is imported after TensorFlow, as it is in a test worker). torch, torchvision and
# timm run on the CPU without triton, so the test processes hide it. keras_cnn itself only imports
# torch (torch.load), which does not load triton.
sys.modules.setdefault("triton", None)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def trainable_count(model_or_layer) -> int:
    return int(sum(int(np.prod(w.shape)) for w in model_or_layer.trainable_weights))


def randomize_batch_norm(model_or_layer, seed=0):
    """Give every BatchNormalization non-trivial statistics and affine weights."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in _all_layers(model_or_layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights([
                rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.2, shape),
                rng.normal(0, 0.2, shape), rng.uniform(0.5, 2.0, shape),
            ])


def _all_layers(obj):
    import keras

    found = []
    stack = [obj]
    while stack:
        layer = stack.pop()
        found.append(layer)
        stack.extend(getattr(layer, "_layers", []) if not isinstance(layer, keras.Model) else layer.layers)
        for attr in vars(layer).values():
            if isinstance(attr, keras.layers.Layer) and attr not in found and attr not in stack:
                stack.append(attr)
    return found


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def digits_fit_lowers_loss(name, size, epochs=3, channels=1, batch_size=16, lr=2e-3, train_images=320,
                           **build_kwargs):
    """Train ``name`` with ``model.fit`` on scikit-learn's real digits at ``size`` (the first
    ``train_images`` training images) and return (first-epoch loss, last-epoch loss, held-out
    accuracy). The losses are ``fit``'s own epoch means, so BatchNorm's running statistics,
    still settling after a few dozen steps, do not blur the comparison.

    The default, 3 epochs of 20 batches of 16, is as many steps as 640 images in batches of 32
    but half the images to push through the net (RepVGG-A0 and MobileNet v1 spend ~10 s an epoch
    on 640 images on 2 cores); the loss still falls by a quarter or more on the BatchNorm nets."""
    import keras

    import keras_cnn
    from keras_cnn import data

    keras.utils.set_random_seed(0)
    train_arrays, test_arrays = _digits("train"), _digits("test")
    images, labels = train_arrays[0][:train_images], train_arrays[1][:train_images]
    train = data.from_arrays(images, labels, image_size=size, channels=channels, batch_size=batch_size)
    test = data.from_arrays(*test_arrays[:2], image_size=size, channels=channels, batch_size=128, shuffle=False)
    model = keras_cnn.build(name, num_classes=10, input_shape=(size, size, channels), **build_kwargs)
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    build_training_state(model, train)
    losses = model.fit(train, epochs=epochs, verbose=0).history["loss"]
    accuracy = model.evaluate(test, verbose=0)[1]
    assert all(np.isfinite(losses)), losses
    return losses[0], losses[-1], accuracy


def build_training_state(model, dataset):
    """Create the optimizer's, the compiled losses' and the metrics' variables eagerly, before ``fit``.

    Without a distribution strategy Keras creates them inside the first trace of the train step,
    and a ``tf.function`` whose first trace creates variables is traced a second time: the whole
    forward, backward and optimizer graph twice (~10-40 s a net on CI's 2 cores). Building them
    on two images first leaves ``fit`` one trace; ``fit`` resets the metrics at each epoch."""
    import keras

    model.optimizer.build(model.trainable_variables)
    x, y = next(iter(dataset))
    x, y = x[:2], keras.tree.map_structure(lambda t: t[:2], y)
    y_pred = model(x, training=False)
    model.compute_loss(x, y, y_pred, training=False)
    model.compute_metrics(x, y, y_pred, sample_weight=None)
    model.reset_metrics()


_DIGITS = {}


def _digits(split):
    """scikit-learn digits, loaded once per test process."""
    from keras_cnn import data

    if split not in _DIGITS:
        _DIGITS[split] = data.load_arrays("digits", split)
    return _DIGITS[split]
