import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# triton (which PyPI's torch wheels depend on) loads an LLVM-based extension that crashes a process
# that has loaded TensorFlow first ("Fatal Python error: Segmentation fault" in triton/knobs.py when
# torchvision or timm is imported after TensorFlow, as it is in a test worker). torch, torchvision and
# timm run on the CPU without triton, so the test processes hide it. keras_cnn itself only imports
# torch (torch.load), which does not load triton.
sys.modules.setdefault("triton", None)
# torchvision's model definitions are pure Python, and they are all the tests use of it (the reference nets of
# the weight tests). Its compiled ops (nms, roi_align, deform_conv2d) live in a library built against one torch
# build: PyPI's torchvision wheels are CUDA builds, and beside torch's CPU build that library does not load.
# torchvision then fails at import in torchvision._meta_registrations, which registers torch.compile's fake
# kernels for those ops ("operator torchvision::nms does not exist"). The test processes skip that module;
# nothing here compiles or calls those ops. Where the library loads, skipping it changes nothing the tests use.
if "torchvision" not in sys.modules:
    import types  # noqa: E402

    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))

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


#: Nets whose forward pass on untrained values overflows float32 in inference mode: resnet1202's 600 residual
#: blocks each add a branch about as large as their input while BatchNorm uses fixed statistics, so the activations
#: double about 600 times (a freshly initialized Keras copy gives NaN too). The harnesses run these in training
#: mode, where BatchNorm normalizes with the batch's statistics, to check they give finite outputs.
UNTRAINED_OVERFLOW = ("resnet1202",)


def forward_without_drawing(build, x, seed=0, training=False):
    """Build a model with ``build()`` without drawing its initializers' values, run ``x`` through it on
    random values of our own, and return ``(model, outputs)`` (outputs as NumPy, in the model's structure).

    The model is built inside ``keras.StatelessScope(initialize_variables=False)``: Keras' deferred
    initialization makes every layer and every variable (path, shape, dtype, initializer) but draws no
    values. ``model.stateless_call`` then runs the forward pass on values given to it, inside the same
    scope, so nothing is drawn on the way out either (a scope nested in another leaves the variables as
    they are). The values come from one NumPy generator: He-uniform for kernels (``sqrt(6 / fan_in)``
    with ``fan_in`` every axis but the last), [0.5, 1.5) for vectors (positive: BatchNorm's moving
    variance is valid), zeros for integer state (seed generators); NumPy draws uniform float32 at about
    1 ns a value. ``training=True`` runs BatchNorm on the batch's statistics (:data:`UNTRAINED_OVERFLOW`).

    This is for the harnesses that build every registered name to check its architecture (parameter
    count, output shape, finite outputs): drawing the initializers' values was most of their building
    time. Measured quiet on the 2-core machine over the 80 names: TensorFlow build 67 s, of which 54 s
    drew 3.2 G values (17 ns a value); the torch backend's truncated normal draws 4 normals a value. The
    initializers themselves run wherever a test builds normally: every fit, the training steps, the
    round trips, the weight pairs. The model returned holds no values; build it again to use it."""
    import keras

    rng = np.random.default_rng(seed)

    def values(variables):
        out = []
        for variable in variables:
            shape, dtype = tuple(variable.shape), keras.backend.standardize_dtype(variable.dtype)
            if "float" not in dtype:
                out.append(np.zeros(shape, dtype))
                continue
            drawn = rng.random(shape, dtype=np.float32)  # ~1 ns a value, uniform [0, 1)
            if len(shape) >= 2:
                drawn -= np.float32(0.5)
                drawn *= np.float32(2 * np.sqrt(6.0 / max(1, int(np.prod(shape[:-1])))))
            else:
                drawn += np.float32(0.5)
            out.append(drawn.astype(dtype, copy=False))
        return out

    with keras.StatelessScope(initialize_variables=False):
        model = build()
        outputs, _ = model.stateless_call(values(model.trainable_variables), values(model.non_trainable_variables),
                                          x, training=training)
        outputs = keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)
    return model, outputs


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
    from keras_cnn.training import optimizers  # Keras' Adam, one fused op per variable: half the tracing

    keras.utils.set_random_seed(0)
    train_arrays, test_arrays = _digits("train"), _digits("test")
    images, labels = train_arrays[0][:train_images], train_arrays[1][:train_images]
    train = data.from_arrays(images, labels, image_size=size, channels=channels, batch_size=batch_size)
    test = data.from_arrays(*test_arrays[:2], image_size=size, channels=channels, batch_size=128, shuffle=False)
    model = keras_cnn.build(name, num_classes=10, input_shape=(size, size, channels), **build_kwargs)
    model.compile(optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
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


# One child process that runs ``keras_cnn.cli.main(argv)`` per request (a JSON line {"argv", "cwd"}), as the
# ``keras-cnn`` script does, and answers with its exit code, stdout and stderr; an exception escaping ``main``
# is written to the captured stderr as Python would print it, exit code 1.
_CLI_CHILD = """
import contextlib, io, json, os, sys, traceback
from keras_cnn.cli import main

answer = sys.stdout
for line in sys.stdin:
    request = json.loads(line)
    os.chdir(request["cwd"])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(request["argv"])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
    answer.write("@@" + json.dumps({"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}) + "\\n")
    answer.flush()
"""


class CliProcess:
    """``keras-cnn`` commands run one after the other in one child process (TensorFlow imported once), for
    variants of commands that already ran as their own process: ``cli(args, cwd)`` returns the
    ``CompletedProcess`` a ``keras-cnn`` process would."""

    def __init__(self, cwd=None):
        import subprocess

        self.cwd = cwd
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", _CLI_CHILD], env=environment, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def __call__(self, args, cwd=None):
        import json
        import subprocess

        argv = [str(a) for a in args]
        self.proc.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd or self.cwd or os.getcwd())}) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:  # anything the child printed outside a command is skipped
            if line.startswith("@@"):
                reply = json.loads(line[2:])
                return subprocess.CompletedProcess(argv, reply["returncode"], reply["stdout"], reply["stderr"])
        raise AssertionError(f"the keras-cnn runner process died (exit {self.proc.wait()}) on keras-cnn {argv}")

    def close(self):
        import subprocess

        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def pytest_collection_finish(session):
    """Freeze what the collected test modules imported (TensorFlow, Keras, torch, timm: about a million
    objects) out of the garbage collector's sight. Each ``gc.collect()``, which ``keras.backend.clear_session()``
    runs after every model here, walked all of them: ~1 s a call on CI's 2 cores, ~0.05 s once frozen. The
    objects the tests create are collected as before."""
    import gc

    gc.collect()
    gc.freeze()


#: The longest tests, longest first (seconds in session 19's CI run, `.ci/run` on 2 cores, `-n 2`; torch build-all
#: and the V3-Large int8 check from session 18's). Collected first, so that pytest-xdist's two workers start on them
#: and the hundreds of short tests fill in around them, rather than one worker finishing alone on a long test
#: collected last (the longest-first rule for two machines). Stale entries match nothing and change nothing.
LONGEST_FIRST = (
    "test_calibration.py::test_calibration_on_the_wrong_domain_costs_accuracy_on_fashion_mnist",  # 481
    "test_gpu_check.py::test_gpu_check_dry_run_without_tensorflow",  # 245-516
    "test_multiprocess.py::test_two_processes_train_like_one_process_over_two_devices_and_resume_exactly",  # 251
    "test_torch_backend.py::test_every_name_builds_runs_and_round_trips_on_torch",  # 211
    "test_explain.py::test_gradcam_runs_on_every_registered_name_at_its_minimum_input",  # 139-197 each, 4
    "test_persistence.py::test_every_registered_model_loads_in_a_fresh_process",  # 179
    "test_torch_backend.py::test_one_fit_per_family_lowers_the_loss_on_torch",  # 169
    "test_int8.py::test_mobilenet_v3_large_int8_keeps_accuracy_on_digits",  # 148
    "test_persistence.py::test_training_killed_mid_epoch_resumes_exactly",  # 117 (lenet5), 2
    "test_cli_e2e.py::test_bench_commands",  # ~130 in session 18, plus the mixed int8 mode since session 20
    "test_mixed_int8.py::test_cli_auto_times_this_cpu_and_caches_the_table",  # two timed exports, session 20
)


def pytest_collection_modifyitems(session, config, items):
    """Move the :data:`LONGEST_FIRST` tests to the front, in that order; the others keep theirs."""

    def rank(item):
        path = f"{item.path.name}::{item.originalname or item.name}"
        return next((i for i, prefix in enumerate(LONGEST_FIRST) if path == prefix), len(LONGEST_FIRST))

    items[:] = sorted(items, key=rank)  # sorted() is stable: equal ranks keep the collection's order
