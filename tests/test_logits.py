"""Softmax classifiers fit on their logits on every backend (keras_cnn.training.logits).

On JAX, Keras clips softmax probabilities before the log, so LeNet-5's RBF output (penalties in
the hundreds) trained to 0.1 accuracy; these tests pin the fix.
"""

import doctest
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn.training import callbacks, logits, schedules
from keras_cnn.training.logits import fitting_on_logits, softmax_output_layers


def test_softmax_output_layers_finds_every_softmax_head():
    assert [layer.name for layer in softmax_output_layers(keras_cnn.build("lenet5"))] == ["predictions"]
    googlenet = keras_cnn.build("googlenet", num_classes=10, input_shape=(112, 112, 3), aux_logits=True)
    assert sorted(layer.name for layer in softmax_output_layers(googlenet)) == ["aux1", "aux2", "predictions"]
    assert softmax_output_layers(keras_cnn.build("lenet5", classifier_activation=None)) == []


def test_tensorflow_backend_is_left_as_it_is():
    model = keras_cnn.build("lenet5")
    model.compile("adam", keras.losses.CategoricalCrossentropy())
    with fitting_on_logits(model):
        assert model.get_layer("predictions").activation is keras.activations.softmax
        assert model.loss.from_logits is False


def test_logits_inside_probabilities_in_checkpoints_and_after(tmp_path, monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")  # the swap is for backends other than TF
    model = keras_cnn.build("lenet5", num_classes=10)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
    model.compile("adam", loss)
    images = np.random.default_rng(0).random((16, 32, 32, 1), dtype=np.float32)
    with fitting_on_logits(model):
        scores = model.predict(images, verbose=0)
        assert not np.allclose(scores.sum(-1), 1.0)  # raw RBF logits
        assert loss.from_logits and loss._fn_kwargs["from_logits"]
        model.fit(images, np.eye(10)[np.arange(16) % 10], epochs=1, verbose=0)
        callbacks.save_atomically(model, tmp_path / "inside.keras")
        assert model.get_layer("predictions").activation is keras.activations.linear  # back to logits
    assert model.get_layer("predictions").activation is keras.activations.softmax
    assert loss.from_logits is False and loss._fn_kwargs["from_logits"] is False
    probabilities = model.predict(images, verbose=0)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    saved = keras.saving.load_model(tmp_path / "inside.keras")
    assert saved.get_layer("predictions").get_config()["activation"] == "softmax"
    assert saved.loss.from_logits is False
    np.testing.assert_allclose(saved.predict(images, verbose=0), probabilities, rtol=1e-4, atol=1e-6)


JAX_RUN = """
import json, keras, numpy as np, keras_cnn
result = keras_cnn.train("lenet5", "digits", output="run", epochs=2, limit=512, verbose=0)
best = keras.saving.load_model("run/best.keras")
sums = best.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0).sum(-1)
print(json.dumps({"top1": result.summary["test_top1"], "sums": sums.tolist(),
                  "activation": best.get_layer("predictions").get_config()["activation"]}))
"""


def test_lenet5_rbf_trains_on_jax_and_checkpoints_probabilities(tmp_path):
    pytest.importorskip("jax")
    # XLA's LLVM back end at -O0: compiling LeNet-5's steps costs more than running them (22 s -> 18 s)
    xla_flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": xla_flags}
    completed = subprocess.run([sys.executable, "-c", JAX_RUN], env=env, cwd=tmp_path, capture_output=True,
                               text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["top1"] > 0.3, report  # 0.1 (chance) before the fix; 0.41 on TensorFlow
    assert report["activation"] == "softmax" and np.allclose(report["sums"], 1.0, rtol=1e-5)


@pytest.mark.parametrize("module", [logits, schedules, callbacks], ids=lambda m: m.__name__)
def test_module_examples_run(module):
    assert doctest.testmod(module).failed == 0
