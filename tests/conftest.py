import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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
