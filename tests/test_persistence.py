"""Saved models and interrupted runs, checked the way a user meets them: in a NEW process.

The round-trip tests elsewhere load in the same process that built the model, so they cannot
see an unregistered layer: the class is already imported and any lookup by module path works
there. A user loads a ``.keras`` file in a fresh interpreter that has run nothing but
``import keras, keras_cnn``, and Keras then finds custom classes only through
``register_keras_serializable`` (it does not import arbitrary modules named in a config).
These tests do exactly that, in subprocesses:

* ``test_models_saved_before_the_layout_change_still_load``: files saved by keras_cnn 0.1.0
  (``tests/fixtures/saved_by_0.1.0``, before the package layout changed) still load and give
  bit-identical outputs, so files users saved earlier keep working.
* ``test_every_registered_model_loads_in_a_fresh_process`` (slow): every registered name is
  built, saved and loaded in another process; configs, weights and outputs must round-trip
  exactly.
* ``test_training_killed_mid_epoch_resumes`` (slow): ``keras-cnn train`` killed with SIGKILL in
  the middle of an epoch resumes with ``--resume`` from its last finished epoch, leaves
  loadable checkpoints and no temporary files, and ends as accurate as an uninterrupted run.

The test process itself never imports TensorFlow here; all model work runs in the children.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "saved_by_0.1.0"
FIXTURE_NAMES = ("lenet5", "resnet20", "shufflenet_v2_x0_5")


def _env() -> dict:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")


def _keras_cnn_command() -> list[str]:
    """The ``keras-cnn`` console script beside this interpreter, else ``python -m keras_cnn.cli``."""
    script = Path(sys.executable).with_name("keras-cnn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "keras_cnn.cli"]


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _run_python(code: str, *args, cwd, timeout: float) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; fail with its stderr when it does not exit 0."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, (f"child python exited {proc.returncode}\n--- stdout:\n{_tail(proc.stdout)}\n"
                                  f"--- stderr:\n{_tail(proc.stderr)}")
    return proc


def _json_lines(stdout: str, prefix: str = "@@") -> list[dict]:
    return [json.loads(line[len(prefix):]) for line in stdout.splitlines() if line.startswith(prefix)]


# --------------------------------------------------------------------------- 1. files saved by 0.1.0
_LOAD_FIXTURES = """
    import json, sys, traceback
    from pathlib import Path
    import numpy as np
    import keras, keras_cnn  # the only set-up a user's fresh process has

    fixtures, out = Path(sys.argv[1]), Path(sys.argv[2])
    for name in sys.argv[3:]:
        try:
            model = keras.saving.load_model(fixtures / f"{name}.keras")
            images = np.load(fixtures / f"{name}_input.npy")
            np.save(out / f"{name}_loaded.npy", model.predict(images, verbose=0))
            print("@@" + json.dumps({"name": name, "error": None}), flush=True)
        except Exception:
            print("@@" + json.dumps({"name": name, "error": traceback.format_exc()}), flush=True)
"""


def test_models_saved_before_the_layout_change_still_load(tmp_path):
    """One fresh process (TensorFlow's import dominates) loads all three fixtures and predicts on
    the saved input; the outputs must equal those 0.1.0 computed within float32 rounding (same
    weights, same ops). Bit for bit holds only on the CPU that wrote the fixtures: on an AVX-512
    machine oneDNN picks other kernels and lenet5's probabilities moved by 7e-7 (relative 8e-7),
    while a wrong weight or layer moves them by whole percents."""
    proc = _run_python(_LOAD_FIXTURES, FIXTURES, tmp_path, *FIXTURE_NAMES, cwd=tmp_path, timeout=600)
    reports = {r["name"]: r for r in _json_lines(proc.stdout)}
    assert sorted(reports) == sorted(FIXTURE_NAMES), f"child reported {sorted(reports)}\n{_tail(proc.stderr)}"
    failed = {name: r["error"] for name, r in reports.items() if r["error"]}
    assert not failed, "\n\n".join(f"{name} saved by 0.1.0 no longer loads:\n{err}" for name, err in failed.items())
    for name in FIXTURE_NAMES:
        expected = np.load(FIXTURES / f"{name}_output.npy")
        got = np.load(tmp_path / f"{name}_loaded.npy")
        assert got.shape == expected.shape, f"{name}: output shape {got.shape}, 0.1.0 gave {expected.shape}"
        assert np.allclose(got, expected, rtol=1e-5, atol=1e-6), (
            f"{name}: outputs differ from 0.1.0's, max |diff| {np.abs(got - expected).max():.3g}\n"
            f"now:   {got[0][:5]}\n0.1.0: {expected[0][:5]}")


# --------------------------------------------------------------------------- 2. every registered model
# One child process per role, speaking JSON lines: the saver builds and records one model per
# request; the loader (which has run nothing but ``import keras, keras_cnn`` before its first
# load) rebuilds it and compares. Loading registers nothing, which the loader checks after every
# request, so later loads in the same loader are as fresh as the first.
#
# Two kinds of request:
# * "config": every registered name. The saver writes ``model.to_json()`` and the weights' paths
#   and shapes; the loader rebuilds the model with ``keras.models.model_from_json`` and must get
#   the same config and the same weights (paths and shapes). This is what a fresh process needs
#   to find every class and rebuild every variant's exact structure. Both sides build inside
#   ``keras.StatelessScope(initialize_variables=False)``: every layer is built and every variable
#   made with its path, shape and initializer, but no values are drawn (Keras' deferred
#   initialization). Drawing them (TensorFlow variable creation and random initializers) was two
#   thirds to 98% of a build (densenet121 7.3 s -> 2.4 s, vgg19 4.7 s -> 0.07 s; all 80 built and
#   rebuilt: 628 s -> 130 s on the busy 2-core machine), and no config check reads a value: the
#   values are the full round trip's job.
# * "full": a covering set of small variants (see ``_full_round_trip_names``): ``model.save`` with
#   constant weights made random, then ``keras.saving.load_model``; config, weight values and
#   outputs must round-trip exactly. Weights are stored per layer, so one variant per family and
#   per keras_cnn class covers every way our layers save and restore their variables; the big
#   variants would only add gigabytes of the same (the ten VGGs alone are 5.5 GB).
_ROUND_TRIP_WORKER = r"""
import gc, json, shutil, sys, time, traceback
from pathlib import Path
import numpy as np
import keras, keras_cnn

role, work = sys.argv[1], Path(sys.argv[2])
# the imports' ~500k objects out of the collector's sight: every request ends in clear_session() and
# gc.collect(), each of which walked them all (~0.5-1 s a call on 2 cores, 100+ requests per process)
gc.collect()
gc.freeze()


def reply(message):
    sys.stdout.write("@@" + json.dumps(message) + "\n")
    sys.stdout.flush()


def outputs(model, images):
    return [np.asarray(y) for y in keras.tree.flatten(model(images, training=False))]


def weight_shapes(model):
    return [[w.path, list(w.shape)] for w in model.weights]


def weight_digest(model):
    # Order and shapes are what Keras' weight file relies on; float64 sums of float32 arrays are
    # deterministic, so equal weights give equal sums and a single changed value changes them.
    return [[w.path, list(w.shape), float(np.sum(np.asarray(w), dtype=np.float64))] for w in model.weights]


def keras_cnn_classes(model):
    # every class of ours in the model, nested layers included
    classes = {type(model)} | {type(layer) for layer in model._flatten_layers(include_self=False)}
    return sorted(f"{c.__module__}.{c.__qualname__}" for c in classes if c.__module__.startswith("keras_cnn"))


def input_shape(name):
    # Small inputs keep the forward pass cheap; the weights do not depend on the input size
    # (AlexNet/ZFNet/VGG pool adaptively before their classifiers).
    spec = keras_cnn.get_spec(name)
    size = min(max(spec.min_input_size, 32), spec.input_shape[0])
    return (size, size, spec.input_shape[-1])


def make_constants_random(model, rng):
    # Biases, BatchNorm gamma/beta/moving statistics and other constant-initialised weights would
    # come out the same from a fresh build, so a weight that silently failed to load would go
    # unnoticed. Shift each such weight by positive noise (variances stay positive).
    for w in model.weights:
        if "float" not in str(w.dtype):
            continue
        value = np.asarray(w)
        if value.size and np.all(value == value.flat[0]):
            w.assign((value + rng.uniform(0.05, 0.5, value.shape)).astype(value.dtype))


def save(name, full):
    folder = work / name
    folder.mkdir()
    keras.utils.set_random_seed(0)
    shape = input_shape(name)
    if full:
        model = keras_cnn.build(name, input_shape=shape)
    else:
        with keras.StatelessScope(initialize_variables=False):  # shapes and paths, no values (see above)
            model = keras_cnn.build(name, input_shape=shape)
    (folder / "config.json").write_text(model.to_json())
    result = {"input_shape": shape, "params": model.count_params(), "family": keras_cnn.get_spec(name).family,
              "classes": keras_cnn_classes(model)}
    if not full:
        (folder / "weights.json").write_text(json.dumps(weight_shapes(model)))
        return result
    make_constants_random(model, np.random.default_rng(1))
    images = np.random.default_rng(0).standard_normal((2, *shape)).astype("float32")
    np.save(folder / "input.npy", images)
    np.savez(folder / "output.npz", *outputs(model, images))
    (folder / "weights.json").write_text(json.dumps(weight_digest(model)))
    model.save(folder / f"{name}.keras")
    return {**result, "bytes": sum(p.stat().st_size for p in folder.iterdir())}


def compare_weights(saved, loaded, problems):
    if len(saved) != len(loaded):
        problems.append(f"{len(loaded)} weights, saved model had {len(saved)}")
    for old, new in zip(saved, loaded):
        if old[1:] != new[1:]:
            problems.append(f"weight {old[0]} (rebuilt as {new[0]}): {new[1:]}, saved {old[1:]}")
            break


def load(name, full):
    folder = work / name
    config = (folder / "config.json").read_text()
    problems = []
    if not full:
        with keras.StatelessScope(initialize_variables=False):  # shapes and paths, no values (see above)
            model = keras.models.model_from_json(config)
        compare_weights(json.loads((folder / "weights.json").read_text()), weight_shapes(model), problems)
    else:
        model = keras.saving.load_model(folder / f"{name}.keras")
        images = np.load(folder / "input.npy")
        with np.load(folder / "output.npz") as saved:
            expected = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        got = outputs(model, images)
        if len(got) != len(expected):
            problems.append(f"{len(got)} outputs, saved model had {len(expected)}")
        for i, (g, e) in enumerate(zip(got, expected)):
            if g.shape != e.shape:
                problems.append(f"output {i}: shape {g.shape}, saved model gave {e.shape}")
            elif not np.array_equal(g, e):
                problems.append(f"output {i}: max |diff| {float(np.max(np.abs(g - e))):.3g}")
        compare_weights(json.loads((folder / "weights.json").read_text()), weight_digest(model), problems)
    if json.loads(model.to_json()) != json.loads(config):
        problems.append("the rebuilt model's config differs from the saved model's")
    return {"problems": problems}


registered = (set(keras.saving.get_custom_objects()), {m for m in sys.modules if m.startswith("keras_cnn")})
for line in sys.stdin:
    request = json.loads(line)
    if request.get("list"):
        reply({"names": keras_cnn.list_models()})
        continue
    name, full, started = request["name"], request["full"], time.perf_counter()
    try:
        result = save(name, full) if role == "save" else load(name, full)
        result["error"] = None
    except Exception:  # the innermost frames and the message (Keras puts the layer's config in it)
        result = {"error": traceback.format_exc(limit=-3)[-3000:]}
    if role == "load" or result["error"]:  # checked, or half-saved: remove the model's folder
        shutil.rmtree(work / name, ignore_errors=True)
    keras.backend.clear_session()
    gc.collect()
    if role == "load" and (set(keras.saving.get_custom_objects()),
                           {m for m in sys.modules if m.startswith("keras_cnn")}) != registered:
        result["error"] = (result["error"] or "") + "loading registered or imported something new"
    result.update(name=name, full=full, seconds=round(time.perf_counter() - started, 2))
    reply(result)
"""


class _Worker:
    """A child python running ``_ROUND_TRIP_WORKER`` in ``role``; one JSON request, one JSON reply."""

    def __init__(self, role: str, work: Path, log: Path):
        self.role, self.log = role, log
        self._stderr = open(log, "w")  # noqa: SIM115  (closed in close())
        self.proc = subprocess.Popen([sys.executable, "-c", _ROUND_TRIP_WORKER, role, str(work)], cwd=work,
                                     env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, bufsize=1)
        self._replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("@@"):
                self._replies.put(json.loads(line[2:]))
        self._replies.put(None)  # the child closed its stdout: it has exited

    def send(self, request: dict):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float) -> dict:
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            reply = None
            self.proc.kill()
        if reply is None:
            self.proc.wait()
            raise AssertionError(f"the {self.role} process died or hung (exit {self.proc.returncode}); "
                                 f"its stderr:\n{_tail(self.log.read_text())}")
        return reply

    def close(self):
        try:
            self.proc.stdin.close()  # end of requests: the child leaves its loop and exits
        except OSError:  # it has exited already
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


#: Families whose every variant is larger than this (VGG, AlexNet, ZFNet: 60-140M parameters, all of
#: them in Keras' own Dense and Conv2D layers) are covered by the config round trip only; their
#: keras_cnn classes, if any, are still saved in full through the smallest variant that has them.
FULL_ROUND_TRIP_MAX_PARAMS = 30_000_000


def _full_round_trip_names(built: dict) -> list:
    """The smallest set of variants, picked smallest first, that holds every keras_cnn class and
    every family with a variant of at most ``FULL_ROUND_TRIP_MAX_PARAMS`` at least once.
    ``built``: {name: the saver's reply (params, family, classes)}."""
    by_size = sorted(built, key=lambda name: (built[name]["params"], name))
    chosen, families, classes = [], set(), set()
    for name in by_size:
        new_family = built[name]["family"] not in families and built[name]["params"] <= FULL_ROUND_TRIP_MAX_PARAMS
        adds = new_family or not set(built[name]["classes"]) <= classes
        if adds:
            chosen.append(name)
            families.add(built[name]["family"])
            classes.update(built[name]["classes"])
    # drop the ones whose family (where required) and classes the others hold already (largest first)
    required = {built[n]["family"] for n in built if built[n]["params"] <= FULL_ROUND_TRIP_MAX_PARAMS}
    for name in sorted(chosen, key=lambda n: -built[n]["params"]):
        others = [n for n in chosen if n != name]
        family = built[name]["family"]
        if ((family not in required or family in {built[n]["family"] for n in others})
                and set(built[name]["classes"]) <= {c for n in others for c in built[n]["classes"]}):
            chosen = others
    return chosen


def _round_trip(work: Path, logs: Path) -> tuple[dict, dict, list]:
    """Config round trip of every registered name, then the full round trip of the covering set:
    the saver works on request i+1 while the loader checks request i. Returns ({name: saver's
    reply}, {(name, full): failure}, [(name, full, save s, load s)])."""
    saver = _Worker("save", work, logs / "saver.log")
    loader = _Worker("load", work, logs / "loader.log")
    built, failures, timings = {}, {}, []

    def pipeline(requests):
        waiting = None  # the saver's reply for a request the loader is checking
        for request in [*requests, None]:
            if request:
                saver.send(request)
            if waiting:
                loader.send({"name": waiting["name"], "full": waiting["full"]})
            saved = saver.receive(timeout=900) if request else None
            if waiting:
                checked = loader.receive(timeout=900)
                timings.append((waiting["name"], waiting["full"], waiting["seconds"], checked["seconds"]))
                if checked["error"] or checked["problems"]:
                    failures[waiting["name"], waiting["full"]] = checked["error"] or "; ".join(checked["problems"])
            waiting = None
            if saved and saved["error"]:
                failures[saved["name"], saved["full"]] = f"could not build and save it: {saved['error']}"
            elif saved:
                waiting = saved
                if not saved["full"]:
                    built[saved["name"]] = saved

    try:
        saver.send({"list": True})
        names = saver.receive(timeout=600)["names"]
        pipeline([{"name": name, "full": False} for name in names])
        pipeline([{"name": name, "full": True} for name in _full_round_trip_names(built)])
    finally:
        saver.close()
        loader.close()
    return built, failures, timings


@pytest.mark.slow
def test_every_registered_model_loads_in_a_fresh_process(tmp_path):
    """Every registered name, built at a small input with its default classes, is rebuilt from its
    saved config in another process (``model_from_json``): same config, same weights (paths and
    shapes). Then a covering set of small variants (every keras_cnn class, every family that has a
    variant under 30M parameters) is saved
    with ``model.save`` and loaded with ``keras.saving.load_model`` in that other process: same
    config, same weight values and bit-identical outputs (both sides run the same eager forward
    pass on the same CPU; no tolerance needed).

    Session 10 saved and loaded all 80 in full: 705 s in the suite, 13 GB of weights written and
    read, which tested Keras' weight file more than ours. Rebuilding every name from its config
    keeps what a fresh process must get right for each variant (every class registered, every
    option serialized); the covering set keeps every way our layers store their variables.
    The config round trip builds without drawing weight values (deferred initialization, see
    ``_ROUND_TRIP_WORKER``), which no config check reads.
    """
    work = tmp_path / "models"
    work.mkdir()
    started = time.perf_counter()
    built, failures, timings = _round_trip(work, tmp_path)
    full = sorted(name for name, is_full, _, _ in timings if is_full)
    slowest = ", ".join(f"{n} {s:.0f}+{l:.0f} s" for n, _, s, l in sorted(timings, key=lambda t: -t[2] - t[3])[:5])
    print(f"\n{len(built)} models rebuilt from their configs and {len(full)} saved and loaded in full "
          f"({', '.join(full)}) in {time.perf_counter() - started:.0f} s; slowest (save+load): {slowest}")
    assert len(built) + sum(1 for (_, is_full) in failures if not is_full) >= 80, sorted(built)
    assert not failures, (f"{len(failures)} registered models do not survive save -> load in a fresh process:\n\n"
                          + "\n\n".join(f"{n} ({'full' if f else 'config'}): {e}" for (n, f), e in failures.items()))
    families = {reply["family"] for reply in built.values() if reply["params"] <= FULL_ROUND_TRIP_MAX_PARAMS}
    classes = {c for reply in built.values() for c in reply["classes"]}
    assert {built[n]["family"] for n in full} >= families
    assert {c for n in full for c in built[n]["classes"]} == classes
    assert not list(work.iterdir()), f"files left behind: {sorted(p.name for p in work.iterdir())}"


# --------------------------------------------------------------------------- 3. SIGKILL mid-epoch, then --resume
EPOCHS = 5
# lenet5's recipe batch (32) makes an epoch of digits take well under a second here; batches of 8
# give 180 steps and about 2 s per epoch on the 2-core dev machine, so "half way through epoch 3"
# is a wide target and the kill cannot land in an epoch-end save.
BATCH_SIZE = 8
TRAIN_ARGS = ["train", "lenet5", "--dataset", "digits", "--epochs", str(EPOCHS), "--output", "RUN",
              "--verbose", "1", "--seed", "0", "--batch-size", str(BATCH_SIZE)]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _history_epochs(run: Path) -> list[int]:
    with open(run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and "epoch_seconds" in rows[0], f"history.csv lacks epoch_seconds: {rows[:1]}"
    return [int(row["epoch"]) for row in rows]


def _train(cwd: Path, *extra, args=None) -> dict:
    """Run ``keras-cnn`` with ``args`` (default :data:`TRAIN_ARGS`) and ``extra`` to the end; return the
    summary it printed (and wrote)."""
    args = list(args or TRAIN_ARGS)
    proc = subprocess.run(_keras_cnn_command() + args + list(extra), cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, (f"keras-cnn {' '.join(args + list(extra))} exited {proc.returncode}\n"
                                  f"{_tail(_ANSI.sub('', proc.stdout))}\n{_tail(proc.stderr)}")
    printed = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    assert printed == json.loads((cwd / "RUN" / "summary.json").read_text())
    return printed


def _start_and_kill_mid_epoch(cwd: Path, epoch: int, args=None, epochs=EPOCHS) -> tuple[subprocess.Popen, str]:
    """Start training (``keras-cnn`` with ``args``, default :data:`TRAIN_ARGS`; ``--verbose 1``), SIGKILL it
    once ``epoch`` (1-based, as Keras prints it, of ``epochs``) is half done, and return the dead process and
    the step ("90/180") it was killed at.

    On a pipe, Keras' progress bar writes a ``step/steps`` update every 0.05 s (without newlines)
    after the ``Epoch k/E`` line, so the step counter says where the run is."""
    proc = subprocess.Popen(_keras_cnn_command() + list(args or TRAIN_ARGS), cwd=cwd, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks: list[bytes] = []

    def read():  # keep draining the pipe, or a full pipe would stall training
        while chunk := proc.stdout.read1(4096):
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    marker = f"Epoch {epoch}/{epochs}"
    deadline = time.monotonic() + 600
    while True:
        text = _ANSI.sub("", b"".join(chunks).decode(errors="replace"))
        if marker in text:
            steps = re.findall(r"(\d+)/(\d+)", text.split(marker, 1)[1])
            if steps and int(steps[-1][0]) >= int(steps[-1][1]) // 2:
                break
        assert proc.poll() is None, f"training ended (exit {proc.returncode}) before {marker} was half done:\n" \
                                    f"{_tail(text)}"
        assert time.monotonic() < deadline, f"{marker} not half done after 600 s:\n{_tail(text)}"
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=60)
    reader.join(timeout=60)
    return proc, "/".join(steps[-1])


_LOAD_CHECKPOINTS = """
    import json, sys
    import numpy as np
    import keras, keras_cnn

    for path in sys.argv[1:]:
        model = keras.saving.load_model(path)
        images = np.random.default_rng(0).uniform(0, 1, (4, *model.input_shape[1:])).astype("float32")
        probabilities = model.predict(images, verbose=0)
        print("@@" + json.dumps({"path": path, "shape": list(probabilities.shape),
                                 "sums": probabilities.sum(-1).tolist()}), flush=True)
"""


# The two runs of the exact-resume test: lenet5 as above, and resnet20 with translation and MixUp
# (BatchNorm, 3 stages, soft labels) on 384 digits in batches of 8: 48 steps an epoch.
EXACT_RUNS = {
    "lenet5": TRAIN_ARGS,
    "resnet20_mixup": ["train", "resnet20", "--dataset", "digits", "--epochs", str(EPOCHS), "--output", "RUN",
                       "--verbose", "1", "--batch-size", "8", "--limit", "384", "--mixup", "0.2"],
}


#: The runs whose uninterrupted command also runs a second time, to show the same command gives the same run
#: (history and weights). resnet20_mixup, whose every random draw (translation, MixUp, BatchNorm's batches) could
#: break that, is enough: for lenet5 the killed-and-resumed run equals the uninterrupted one exactly, which a
#: command that did not repeat itself could not give either; its second run (about a quarter of the test's time)
#: would only tell a non-deterministic command from a wrong resume when that check fails.
RUN_TWICE = ("resnet20_mixup",)


def _history_rows(run: Path) -> list[dict]:
    """history.csv's rows without the wall-time column."""
    with open(run / "history.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in csv.DictReader(f)]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXACT_RUNS))
def test_training_killed_mid_epoch_resumes_exactly(tmp_path, name):
    """A real ``kill -9`` in the middle of epoch 3, then ``--resume`` to the end, ends with the same
    history rows (every column but the time, to the last digit) and the same weights (sha256) as the same
    command run without a stop (run twice for :data:`RUN_TWICE`, which must agree too): every random draw of
    an epoch is a function of (seed, epoch, step).
    A resume that starts over instead is caught by the history check (epochs 0 and 1 twice)."""
    args = EXACT_RUNS[name]
    killed_dir, straight_dir, again_dir = tmp_path / "killed", tmp_path / "straight", tmp_path / "again"
    for folder in (killed_dir, straight_dir, again_dir):
        folder.mkdir()
    run = killed_dir / "RUN"

    proc, step = _start_and_kill_mid_epoch(killed_dir, epoch=3, args=args)
    assert proc.returncode == -signal.SIGKILL, f"expected death by SIGKILL, exit status {proc.returncode}"
    assert _history_epochs(run) == [0, 1], (
        f"killed at step {step} of epoch 3, history.csv should hold epochs 0 and 1 exactly")
    finished_rows = (run / "history.csv").read_text()
    assert not (run / "summary.json").exists(), "a killed run wrote summary.json"
    assert (run / "last.keras").exists() and (run / "backup").is_dir(), sorted(p.name for p in run.iterdir())

    resumed = _train(killed_dir, "--resume", args=args)
    assert _history_epochs(run) == list(range(EPOCHS)), "after --resume every epoch must appear exactly once"
    assert (run / "history.csv").read_text().startswith(finished_rows), "--resume rewrote the finished epochs' rows"
    assert resumed["epochs"] == EPOCHS and resumed["resumed"] is True and resumed["resumed_from_epoch"] == 2, resumed

    leftovers = [str(p.relative_to(run)) for p in run.rglob(".*") if ".tmp" in p.name]
    assert not leftovers, f"temporary files left in the run folder: {leftovers}"

    checkpoints = [run / "best.keras", run / "last.keras"]
    loaded = _json_lines(_run_python(_LOAD_CHECKPOINTS, *checkpoints, cwd=tmp_path, timeout=600).stdout)
    assert [r["path"] for r in loaded] == [str(p) for p in checkpoints], loaded
    for report in loaded:
        assert report["shape"] == [4, 10], report
        assert np.allclose(report["sums"], 1.0, atol=1e-4), f"{report['path']} does not output probabilities: {report}"

    straight = _train(straight_dir, args=args)
    assert straight["resumed"] is False and straight["resumed_from_epoch"] is None, straight
    if name in RUN_TWICE:  # deterministic: the same command twice, the same run
        again = _train(again_dir, args=args)
        assert _history_rows(straight_dir / "RUN") == _history_rows(again_dir / "RUN")
        assert straight["weights_sha256"] == again["weights_sha256"]
    # exact resume: the killed and resumed run is that run
    assert _history_rows(run) == _history_rows(straight_dir / "RUN"), (
        f"killed at step {step} of epoch 3 and resumed: history differs from the uninterrupted run's")
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    assert resumed["test_top1"] == straight["test_top1"] and resumed["test_loss"] == straight["test_loss"]
