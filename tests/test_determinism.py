"""Deterministic training (issue 34): the random draws inside the model (dropout, drop-path) are set per
epoch by :class:`~keras_cnn.training.callbacks.EpochSeeds`, so a run interrupted inside an epoch and
resumed ends with the weights of the run that never stopped. (The input pipeline's draws are tested in
tests/test_data.py; the whole command, killed with SIGKILL, in tests/test_persistence.py.)"""

from __future__ import annotations

import keras
import pytest

import keras_cnn
from keras_cnn.layers.drop_path import DropPath
from keras_cnn.training.callbacks import EpochSeeds, seed_generators


def _net():
    """A small net whose training draws at random inside: dropout and drop-path."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Add()([x, DropPath(0.3)(keras.layers.Conv2D(8, 3, padding="same")(x))])
    x = keras.layers.Dropout(0.3)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="predictions")(x), name="tiny")


class _StopInEpoch(keras.callbacks.Callback):
    """Interrupt training half way through ``epoch``, as a kill would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.current = epoch, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == 10:
            raise KeyboardInterrupt


def test_epoch_seeds_set_every_seed_generator_from_seed_and_epoch():
    states = []
    for epoch in (1, 1, 2):
        model = _net()
        callback = EpochSeeds(seed=5)
        callback.set_model(model)
        callback.on_epoch_begin(epoch)
        states.append([keras.ops.convert_to_numpy(g.state).tolist() for g in seed_generators(model)])
    assert len(states[0]) == 2 and states[0][0] != states[0][1]  # one stream per generator
    assert states[0] == states[1] and states[0] != states[2]


def test_a_run_with_dropout_and_drop_path_interrupted_inside_an_epoch_resumes_exactly(tmp_path):
    settings = {"dataset": "digits", "epochs": 3, "batch_size": 16, "limit": 480, "mixup": 0.2, "verbose": 0}
    straight = keras_cnn.train(_net(), output=tmp_path / "straight", **settings)
    with pytest.raises(KeyboardInterrupt):
        keras_cnn.train(_net(), output=tmp_path / "resumed", callbacks=[_StopInEpoch(1)], **settings)
    resumed = keras_cnn.train(_net(), output=tmp_path / "resumed", resume=True, **settings)
    assert resumed.summary["resumed"] and resumed.summary["resumed_from_epoch"] == 1
    assert resumed.summary["weights_sha256"] == straight.summary["weights_sha256"]
    for key, values in straight.history.items():
        if key != "epoch_seconds":
            assert resumed.history[key] == values, key
