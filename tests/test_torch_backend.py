"""The torch backend (``KERAS_BACKEND=torch``), in fresh processes as a user would run it.

- the layer tests (tests/test_layers.py) pass there;
- every registered name builds and runs a forward pass at its smallest input (the variants saved below
  built as a user builds them, their initializers drawing on torch; the others without drawing, on values
  of the test's own: ``conftest.forward_without_drawing``. Keras' truncated normal on torch draws four
  normals a value: 124 -> 94 s for this test, quiet);
- saved as ``.keras`` under torch, loaded in another torch process, identical outputs: each family's
  smallest variant of at most 30M parameters (as tests/test_persistence.py's full round trip), and of the
  larger ones (AlexNet, ZFNet, VGG-11, Inception-v4) those that hold a keras_cnn layer class the others do
  not (AlexNet: the adaptive pooling of the flatten heads). Writing and reading VGG-11's 0.5 GB and
  ZFNet's 0.25 GB file tested Keras' weight file more than our layers;
- every family's smallest variant is built as a user builds it in the fit below;
- one ``model.fit`` per family on real digits lowers the loss (8 steps of keras_cnn's Adam, what
  ``keras_cnn.train`` compiles with, on one batch of 8 images: the loss of the step after the last update
  is below the first step's);
- keras_cnn's optimizers update as Keras' own torch optimizers do (Adam and AdamW through torch's fused
  kernel);
- what is TensorFlow's (SavedModel and TFLite export, ``MirroredStrategy``) refuses with a clear
  error instead of failing deep inside TensorFlow.

Cost (2-core CI, beside another xdist worker): ~925 s before gc.freeze(). Measured on a loaded 2-core box: each
clear_session() spent ~1.3 s in gc.collect() walking the ~700k objects of the torch+Keras+TensorFlow imports,
~0.05 s once those are frozen; 80 names + 21 fits made that ~2 min of pure collector time. What remains is the
work itself: building the 80 nets (half of it drawing the weights, ~1.2 G parameters in all) and the Adam
steps of the fits. The fit was 3 epochs of 96 images (18 steps, ~500 s for the 23 families, VGG-11 alone
~70 s); it is now 8 epochs of one batch, the "overfit one batch" check: 518 -> 268 s in the session-15
quiet full run with 16 images, and 16 -> 8 images took the fit process from 121 to 102 s (quiet, session 17;
what remains is mostly Adam's update of VGG-11's 129M and AlexNet's and ZFNet's ~58M parameters).
Measured with seed 0 and 8 images: every family's last loss is below its first; the closest are NiN
2.274 -> 2.032 and SqueezeNet 1.1 2.309 -> 2.067 (with 16 images NiN 2.318 -> 2.131, VGG-11 2.378 -> 2.067).
5 steps of 16 images were too few (NiN 2.318 -> 2.337, VGG-11 -> 2.81), and SGD (0.01, momentum 0.9,
6 steps) failed VGG-11 and LeNet-5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
TESTS = Path(__file__).parent
# torch's CPU build uses one thread per core by default; two xdist workers on two cores spin against each other
ENV = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}

SMALLEST_PER_FAMILY = """
import keras_cnn

def smallest_per_family():
    best = {}
    for name in keras_cnn.list_models():
        spec = keras_cnn.get_spec(name)
        key = (spec.params or 0, name)
        if spec.family not in best or key < best[spec.family][0]:
            best[spec.family] = (key, name)
    return sorted(name for _, name in best.values())

def small_shape(name):
    spec = keras_cnn.get_spec(name)
    size = max(32, spec.min_input_size)
    return (size, size, spec.input_shape[2])
"""

# What the build-all and fit processes start with: the shared helpers, torch on one thread, and the imports
# frozen out of the garbage collector's sight. keras.backend.clear_session() runs gc.collect(), which walks
# every object alive in the process: with torch, Keras and TensorFlow imported (TensorFlow comes in with the
# first set_random_seed) that is ~700k objects and ~1 s a call. gc.freeze() moves what exists now out of the
# collector's sight; every model built later is still collected as before.
TORCH_PROCESS = SMALLEST_PER_FAMILY + """
import gc, json, sys
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(1)
import keras
from keras_cnn import data
assert keras.backend.backend() == "torch"
keras.utils.set_random_seed(0)
gc.freeze()
"""

BUILD_ALL = TORCH_PROCESS + """
out = Path(sys.argv[1])
sys.path.insert(0, sys.argv[2])
from conftest import UNTRAINED_OVERFLOW, forward_without_drawing

def layer_classes(model):
    found, stack = set(), list(model.layers)
    while stack:
        layer = stack.pop()
        if type(layer).__module__.startswith("keras_cnn"):
            found.add(type(layer).__name__)
        stack.extend(getattr(layer, "layers", []))
    return sorted(found)

# Saved and reloaded: each family's smallest variant of at most 30M parameters, then (smallest first) each
# larger family-smallest that holds a keras_cnn layer class none of those holds. Smallest first, so the
# small ones are decided before the large ones.
smallest = set(smallest_per_family())
report, saved_classes = {}, set()
for name in sorted(keras_cnn.list_models(), key=lambda n: (keras_cnn.get_spec(n).params or 0, n)):
    shape = small_shape(name)
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(0, 1, (2, *shape)).astype("float32")
    build = lambda: keras_cnn.build(name, input_shape=shape, num_classes=10)
    save = name in smallest and (keras_cnn.get_spec(name).params or 0) <= 30_000_000
    if not save:  # the architecture only: no values drawn (see conftest.forward_without_drawing)
        model, y = forward_without_drawing(build, x, training=name in UNTRAINED_OVERFLOW)
        classes = layer_classes(model)
        save = name in smallest and not set(classes) <= saved_classes
    if save:  # built as a user builds it: the initializers draw on torch
        model = build()
        y = keras.ops.convert_to_numpy(model(x, training=False))
        classes = layer_classes(model)
        saved_classes.update(classes)
        model.save(out / f"{name}.keras")
        np.save(out / f"{name}.npy", y)
        np.save(out / f"{name}_input.npy", x)
    report[name] = {"shape": list(y.shape), "finite": bool(np.isfinite(y).all())}
    if name in smallest:
        report.setdefault("smallest", {})[name] = {"classes": classes, "saved": save}
    del model
    keras.backend.clear_session()
from keras_cnn.deploy.export import export_tflite
try:
    export_tflite(keras_cnn.build("lenet"), out / "lenet.tflite")
    report["export"] = "exported"
except ValueError as error:
    report["export"] = str(error)
print(json.dumps(report))
"""

LOAD_SAVED = """
import json, sys
from pathlib import Path
import numpy as np
import keras, keras_cnn
assert keras.backend.backend() == "torch"
folder = Path(sys.argv[1])
diffs = {}
for path in sorted(folder.glob("*.keras")):
    model = keras.saving.load_model(path)
    x = np.load(folder / f"{path.stem}_input.npy")
    y = keras.ops.convert_to_numpy(model(x, training=False))
    diffs[path.stem] = float(np.abs(y - np.load(folder / f"{path.stem}.npy")).max())
print(json.dumps(diffs))
"""

FIT_PER_FAMILY = TORCH_PROCESS + """
from keras_cnn.training.optimizers import Adam  # what keras_cnn.train compiles with: torch's fused Adam kernel
arrays = data.load_arrays("digits", "train")
losses = {}
for name in smallest_per_family():
    shape = small_shape(name)
    keras.utils.set_random_seed(0)
    # NumPy arrays, as a torch user feeds fit (a tf.data pipeline iterated beside torch crashed the process
    # with a heap error in a torch 2.x + TensorFlow 2.21 process)
    images = data.prepare_images(arrays.images[:8], shape[0], shape[2]).numpy()
    # RepVGG's training step crashes the process inside torch's oneDNN CPU kernels ("free(): invalid next
    # size", reproduced with repvgg_a0 alone); without oneDNN it trains (README, backend table)
    torch.backends.mkldnn.enabled = not name.startswith("repvgg")
    model = keras_cnn.build(name, input_shape=shape, num_classes=10, classifier_activation=None)
    # the nets without BatchNorm (AlexNet, VGG, NiN, SqueezeNet, LeNet) take a small rate, as their recipes do
    rate = keras_cnn.get_spec(name).recipe.learning_rate
    model.compile(Adam(rate), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # one batch, 8 steps: each epoch's loss is that batch's before the epoch's update
    history = model.fit(images, arrays.labels[:8], batch_size=8, epochs=8, shuffle=False, verbose=0).history["loss"]
    losses[name] = history
    del model
    keras.backend.clear_session()
print(json.dumps(losses))
"""


# keras_cnn's optimizers against Keras' own torch optimizers (torch_adam.Adam, torch_sgd.SGD, ...):
# tests/test_optimizers.py's cases and updates (20, fixed random gradients, eager here), plus AMSGrad;
# Adam and AdamW must go through torch's fused kernel once a step
OPTIMIZERS = """
import importlib, json, sys
import numpy as np
import keras
assert keras.backend.backend() == "torch"
sys.path.insert(0, sys.argv[1])
from test_optimizers import CASES, _updated_weights
from keras_cnn.training import optimizers as fused

cases = {case: (name, arguments) for case, (name, arguments, _) in CASES.items()}
cases["adam_amsgrad"] = ("Adam", lambda: {"learning_rate": 1e-2, "amsgrad": True})
fused_calls = []
adam_module = importlib.import_module("torch.optim.adam")
torch_adam = adam_module.adam

def counting_adam(*args, **kwargs):
    fused_calls.append(kwargs.get("fused"))
    return torch_adam(*args, **kwargs)

adam_module.adam = counting_adam
report = {}
for case, (name, arguments) in cases.items():
    fused_calls.clear()
    ours = _updated_weights(getattr(fused, name)(**arguments()))
    calls = fused_calls.count(True)
    theirs = _updated_weights(getattr(keras.optimizers, name)(**arguments()))
    report[case] = {"diff": max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs)), "fused_calls": calls}
print(json.dumps(report))
"""


def run_on_torch(code, *args, timeout=900):
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=ENV, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_layer_tests_pass_on_torch_backend():
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(TESTS / "test_layers.py")], env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


@pytest.mark.slow
def test_every_name_builds_runs_and_round_trips_on_torch(tmp_path):
    import keras_cnn

    report = run_on_torch(BUILD_ALL, tmp_path, TESTS)
    export, smallest = report.pop("export"), report.pop("smallest")
    assert set(report) == set(keras_cnn.list_models())
    for name, result in report.items():
        assert result == {"shape": [2, 10], "finite": True}, (name, result)
    assert export.startswith("TFLite export needs the tensorflow backend, and KERAS_BACKEND is 'torch'"), export
    diffs = run_on_torch(LOAD_SAVED, tmp_path)  # a fresh torch process that only imported keras_cnn
    saved = {name for name, entry in smallest.items() if entry["saved"]}
    assert set(diffs) == saved, sorted(diffs)
    # every family's smallest variant of at most 30M parameters, and every keras_cnn layer class of any family
    assert saved >= {name for name in smallest if keras_cnn.get_spec(name).params <= 30_000_000}
    assert {c for name in saved for c in smallest[name]["classes"]} == {
        c for entry in smallest.values() for c in entry["classes"]}
    assert all(diff == 0.0 for diff in diffs.values()), diffs


@pytest.mark.slow
def test_one_fit_per_family_lowers_the_loss_on_torch():
    losses = run_on_torch(FIT_PER_FAMILY)
    not_learning = {name: history for name, history in losses.items() if not history[-1] < history[0]}
    assert not not_learning, not_learning


def test_fused_optimizers_equal_keras_torch_optimizers():
    """keras_cnn's Adam, AdamW and SGD (what ``keras_cnn.train`` compiles with) on torch: the weights after 20
    updates equal those of Keras' own torch optimizers within float32 rounding (measured: 0 for SGD, <= 1e-6
    for Adam on values ~2.4), Adam and AdamW through torch's fused kernel once a step, AMSGrad through
    Keras' code."""
    report = run_on_torch(OPTIMIZERS, TESTS)
    assert set(report) == {"adam", "adamw_cosine", "sgd_nesterov_decay", "sgd_momentum", "sgd", "adam_amsgrad"}
    for case, result in report.items():
        assert result["diff"] <= 2e-6, (case, result)
    assert report["adam"]["fused_calls"] == report["adamw_cosine"]["fused_calls"] == 20, report
    assert report["adam_amsgrad"]["fused_calls"] == 0, report
