"""keras_cnn's fused optimizers (keras_cnn.training.optimizers) are Keras' optimizers, written as one
op per variable: the same weights after the same updates, a fraction of the graph, the same saved form."""

import collections
import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cnn
from keras_cnn.training import optimizers as fused
from keras_cnn.training.schedules import WarmupCosineDecay, make_optimizer

# (class name, arguments, the kernel each variable's update must be): every form make_optimizer builds,
# and SGD without momentum
CASES = {
    "adam": ("Adam", lambda: {"learning_rate": 1e-2}, "ResourceApplyAdam"),
    "adamw_cosine": ("AdamW", lambda: {"learning_rate": WarmupCosineDecay(1e-2, 27, 3), "weight_decay": 1e-2},
                     "ResourceApplyAdam"),
    "sgd_nesterov_decay": ("SGD", lambda: {"learning_rate": WarmupCosineDecay(0.1, 27, 3), "momentum": 0.9,
                                           "nesterov": True, "weight_decay": 1e-3}, "ResourceApplyKerasMomentum"),
    "sgd_momentum": ("SGD", lambda: {"learning_rate": 0.05, "momentum": 0.9}, "ResourceApplyKerasMomentum"),
    "sgd": ("SGD", lambda: {"learning_rate": 0.05}, "ResourceApplyGradientDescent"),
}


def _updated_weights(optimizer, steps=20, strategy=None):
    """Two variables after ``steps`` updates with fixed random gradients: traced on TensorFlow (inside
    ``strategy.run`` when given, as ``fit`` runs its steps under a strategy), eager on torch (as ``fit`` runs
    them there; tests/test_torch_backend.py calls this in a torch process)."""
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=(7, 5)).astype("float32")),
                 keras.Variable(rng.normal(size=(5,)).astype("float32"))]
    gradients = [[rng.normal(size=v.shape).astype("float32") for v in variables] for _ in range(steps)]
    optimizer.build(variables)
    if keras.backend.backend() != "tensorflow":
        def step(grads):
            optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    elif strategy is None:
        step = tf.function(lambda grads: optimizer.apply(grads, variables))
    else:
        step = tf.function(lambda grads: strategy.run(optimizer.apply, args=(grads, variables)))
    for grads in gradients:
        step(grads)
    return [keras.ops.convert_to_numpy(v) for v in variables]


def _step_graph_ops(optimizer, count=10) -> collections.Counter:
    variables = [keras.Variable(np.ones((3, 3), "float32")) for _ in range(count)]
    optimizer.build(variables)
    step = tf.function(lambda grads: optimizer.apply(grads, variables))
    graph = step.get_concrete_function([tf.TensorSpec((3, 3), tf.float32)] * count).graph
    return collections.Counter(op.type for op in graph.get_operations())


@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_updates_equal_keras(case):
    name, arguments, _ = CASES[case]
    expected = _updated_weights(getattr(keras.optimizers, name)(**arguments()))
    _assert_close(_updated_weights(getattr(fused, name)(**arguments())), expected)


def _assert_close(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        # float32 rounding of the fused kernel's expression (measured 0 for SGD, <= 1e-6 for Adam on values ~2)
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_variable_is_one_fused_op(case):
    name, arguments, kernel = CASES[case]
    ours, theirs = _step_graph_ops(getattr(fused, name)(**arguments())), _step_graph_ops(
        getattr(keras.optimizers, name)(**arguments()))
    assert ours[kernel] == 10, ours
    assert sum(ours.values()) < 0.6 * sum(theirs.values()), (sum(ours.values()), sum(theirs.values()))


def test_amsgrad_and_strategies_keep_the_keras_update():
    """AMSGrad has no fused kernel here, and inside a tf.distribute strategy the update stays Keras'
    (its per-replica update path): both still match Keras."""
    ops = _step_graph_ops(fused.Adam(1e-2, amsgrad=True))
    assert "ResourceApplyAdam" not in ops
    _assert_close(_updated_weights(fused.Adam(1e-2, amsgrad=True)),
                  _updated_weights(keras.optimizers.Adam(1e-2, amsgrad=True)))
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        ours = _updated_weights(fused.AdamW(1e-2, weight_decay=1e-2), strategy=strategy)
        theirs = _updated_weights(keras.optimizers.AdamW(1e-2, weight_decay=1e-2), strategy=strategy)
    _assert_close(ours, theirs)


def test_make_optimizer_returns_the_fused_optimizers_and_they_serialize():
    for name, cls in (("adamw", fused.AdamW), ("adam", fused.Adam), ("sgd", fused.SGD)):
        optimizer = make_optimizer(name, learning_rate=1e-2, steps=100, warmup_steps=5)
        assert type(optimizer) is cls and isinstance(optimizer, getattr(keras.optimizers, cls.__name__))
        restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
        assert type(restored) is cls and restored.get_config() == optimizer.get_config()


def test_a_compiled_model_saves_and_loads_with_its_optimizer_state(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras_cnn.build("lenet5", num_classes=10)
    model.compile(make_optimizer("adamw", learning_rate=1e-3, steps=10), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 1, (8, 32, 32, 1)).astype("float32")
    y = np.arange(8) % 10
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is fused.AdamW and int(loaded.optimizer.iterations) == 4
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # training goes on from the restored state exactly as it would have in the first process
    model.train_on_batch(x[:4], y[:4])
    loaded.train_on_batch(x[:4], y[:4])
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_module_example_runs():
    assert doctest.testmod(fused).failed == 0
