"""Every user error of the ``keras-cnn`` command ends in ONE line ``keras-cnn: error: ...`` on stderr
and exit code 2: no traceback, and nothing half-written left behind (no run folder, no export, no
temporary files).

Every case runs in a fresh folder, twice over:

* all of them in ONE child process that imports ``keras_cnn.cli`` and calls its ``main(argv)``
  once per case (what the ``keras-cnn`` script does), its stdout and stderr captured per case and
  any exception that escapes ``main`` reported as the traceback a user would see;
* a few (``FRESH_PROCESS_CASES``: a parser error, a data error, a damaged ``.keras`` file, a model
  name, a TFLite file) as the real ``keras-cnn`` executable, each in its own new process, so the
  exit code and stderr are the ones a shell sees.

Session 10 ran all 25 cases as their own processes: 25 TensorFlow imports, about 11 s each on two
cores, for the same checks. TensorFlow may print a few C++ log lines at import that nothing can
silence, so the rule checked is: exit code 2, no "Traceback", exactly one stderr line starting
with ``keras-cnn: error:``, that line is the last non-empty one, and it names what was wrong (the
file, the folder or the value).
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CliProcess

KERAS_CNN = Path(sys.executable).with_name("keras-cnn")
PREFIX = "keras-cnn: error:"
TIMEOUT = 600  # seconds per command: TensorFlow's import alone takes ~10 s on a busy 2-core machine


def run_cli(args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([str(KERAS_CNN), *map(str, args)], check=False, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def runner():
    started = CliProcess()
    yield started
    started.close()


def error_line(result, *names) -> str:
    """The one ``keras-cnn: error:`` line of ``result``, checked against the rule; it must hold every one of
    ``names`` (strings, or compiled regular expressions)."""
    stderr = result.stderr
    shown = f"exit {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{stderr[-6000:]}"
    assert result.returncode == 2, shown
    assert "Traceback" not in stderr, shown
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(PREFIX)]
    assert len(errors) == 1, shown
    assert lines[-1] == errors[0], shown
    line = errors[0]
    for name in names:
        found = name.search(line) if isinstance(name, re.Pattern) else str(name) in line
        assert found, f"{name!r} not named in: {line}"
    return line


def snapshot(root: Path) -> set:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def temporary_files(root: Path) -> list:
    return sorted(str(p) for p in root.rglob("*") if ".tmp" in p.name)


# --------------------------------------------------------------------------- shared setup
def write_idx(path: Path, array: np.ndarray, payload_items=None):
    """An MNIST-format IDX file of uint8 ``array`` (gzip'ed when ``path`` ends in .gz); ``payload_items``:
    write only that many leading items after a header that still announces them all."""
    array = np.asarray(array, "uint8")
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = array[:payload_items].tobytes() if payload_items is not None else array.tobytes()
    raw = header + payload
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def idx_folder(root: Path, gz: bool) -> Path:
    """Valid small Fashion-MNIST-style IDX files (20 train, 10 test images of 28x28)."""
    rng = np.random.default_rng(0)
    root.mkdir()
    suffix = ".gz" if gz else ""
    for prefix, count in (("train", 20), ("t10k", 10)):
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (count, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(count) % 10)
    return root


@pytest.fixture(scope="module")
def shared(tmp_path_factory, runner):
    """One tiny real run (lenet5, digits, 1 epoch), damaged and foreign .keras files, one real image. The run
    is trained by the ``runner`` process the cases use anyway: a ``keras-cnn train`` process of its own cost a
    TensorFlow import more, in each xdist worker that runs this module (session 12: 14-16 s of setup each)."""
    root = tmp_path_factory.mktemp("shared")
    result = runner(["train", "lenet5", "--dataset", "digits", "--epochs", "1", "--output", root / "run",
                     "--verbose", "0"], cwd=root)
    assert result.returncode == 0, result.stderr[-6000:]
    best = root / "run" / "best.keras"
    assert best.is_file()

    files = root / "files"
    files.mkdir()
    (files / "empty.keras").write_bytes(b"")
    content = best.read_bytes()
    (files / "truncated.keras").write_bytes(content[: len(content) // 2])

    import keras  # a valid .keras file of a model that is not an image classifier

    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    dense.save(files / "dense.keras")
    # a keras.applications classifier saved without a run's config.json: its data set is unknown
    keras.applications.MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=10).save(files / "mnv3.keras")

    from PIL import Image

    Image.fromarray(np.zeros((8, 8), "uint8"), "L").save(files / "seven.png")
    return {"root": root, "run": root / "run", "files": files}


# --------------------------------------------------------------------------- the cases
def _text(path: Path, text="not what the name says\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def predict_text_as_png(tmp, s):
    return ["predict", s["run"], _text(tmp / "x.png")], ["x.png"]


def predict_missing_image(tmp, s):
    return ["predict", s["run"], tmp / "missing.png"], ["missing.png"]


def predict_folder_without_images(tmp, s):
    _text(tmp / "noimages" / "readme.txt")
    return ["predict", s["run"], tmp / "noimages"], ["noimages"]


def train_folder_empty(tmp, s):
    (tmp / "empty_data").mkdir()
    return (["train", "lenet5", "--dataset", "folder", "--data-dir", tmp / "empty_data", "--epochs", "1",
             "--output", tmp / "out"], ["empty_data"])


def train_folder_corrupt_png(tmp, s):
    _text(tmp / "images" / "cat" / "bad.png", "this is no png")
    return (["train", "lenet5", "--dataset", "folder", "--data-dir", tmp / "images", "--epochs", "1",
             "--output", tmp / "out"], ["bad.png"])


def train_idx_gz_cut_in_half(tmp, s):
    folder = idx_folder(tmp / "fashion", gz=True)
    target = folder / "train-images-idx3-ubyte.gz"
    content = target.read_bytes()
    target.write_bytes(content[: len(content) // 2])
    return (["train", "lenet5", "--dataset", "fashion_mnist", "--data-dir", folder, "--epochs", "1",
             "--output", tmp / "out"], ["train-images-idx3-ubyte.gz"])


def train_idx_payload_short(tmp, s):
    folder = idx_folder(tmp / "fashion", gz=False)
    images = np.random.default_rng(1).integers(0, 256, (20, 28, 28))
    write_idx(folder / "train-images-idx3-ubyte", images, payload_items=10)  # header says 20 images
    return (["train", "lenet5", "--dataset", "fashion_mnist", "--data-dir", folder, "--epochs", "1",
             "--output", tmp / "out"], ["train-images-idx3-ubyte"])


def _train_lenet5(tmp, *flags):
    return ["train", "lenet5", "--dataset", "digits", "--output", tmp / "out", *flags]


def train_epochs_0(tmp, s):
    return _train_lenet5(tmp, "--epochs", "0"), ["epochs", re.compile(r"\b0\b")]


def train_lr_negative(tmp, s):
    return _train_lenet5(tmp, "--epochs", "1", "--lr", "-1"), ["learning_rate", "-1"]


def train_batch_size_0(tmp, s):
    return _train_lenet5(tmp, "--epochs", "1", "--batch-size", "0"), ["batch_size", re.compile(r"\b0\b")]


def train_option_bad_value(tmp, s):
    return _train_lenet5(tmp, "--epochs", "1", "--option", "head=bogus"), ["head", "bogus"]


def train_option_unknown(tmp, s):
    return _train_lenet5(tmp, "--epochs", "1", "--option", "nosuch=1"), ["nosuch"]


def train_weights_imagenet_none_published(tmp, s):
    return _train_lenet5(tmp, "--epochs", "1", "--weights", "imagenet"), ["lenet5", "imagenet", "none is published"]


def train_unknown_model(tmp, s):
    return (["train", "no_such_model", "--dataset", "digits", "--epochs", "1", "--output", tmp / "out"],
            ["no_such_model"])


def export_format_onnx(tmp, s):
    return (["export", "mobilenet_v3_small", "--format", "onnx", "--output", tmp / "exported"],
            ["onnx", "--format"])


def summary_two_dims(tmp, s):
    return ["summary", "lenet5", "--input-shape", "32,32"], ["32,32"]


def info_misspelled(tmp, s):
    return ["info", "lenett"], ["lenett", "lenet5", re.compile(r"\blenet\b(?!5)")]


def evaluate_empty_keras(tmp, s):
    return ["evaluate", s["files"] / "empty.keras"], ["empty.keras"]


def evaluate_truncated_keras(tmp, s):
    return ["evaluate", s["files"] / "truncated.keras"], ["truncated.keras"]


def evaluate_not_a_classifier(tmp, s):
    return ["evaluate", s["files"] / "dense.keras"], ["dense.keras"]


def export_truncated_keras(tmp, s):
    return (["export", s["files"] / "truncated.keras", "--format", "tflite", "--output", tmp / "exported"],
            ["truncated.keras"])


def predict_truncated_keras(tmp, s):
    return ["predict", s["files"] / "truncated.keras", s["files"] / "seven.png"], ["truncated.keras"]


def evaluate_run_without_checkpoints(tmp, s):
    run = tmp / "no_checkpoints"
    run.mkdir()
    (run / "config.json").write_text((s["run"] / "config.json").read_text())
    return ["evaluate", run], ["no_checkpoints"]


def export_empty_run_folder(tmp, s):
    (tmp / "empty_run").mkdir()
    return (["export", tmp / "empty_run", "--format", "savedmodel", "--output", tmp / "exported"],
            ["empty_run"])


def tflite_bench_missing(tmp, s):
    return ["tflite-bench", tmp / "missing.tflite", "--runs", "1", "--warmup", "0"], ["missing.tflite"]


def tflite_bench_not_tflite(tmp, s):
    return (["tflite-bench", _text(tmp / "notes.tflite"), "--runs", "1", "--warmup", "0"], ["notes.tflite"])


def _resume_shared_run(s, *flags, name="lenet5"):
    return ["train", name, "--output", s["run"], "--resume", "--verbose", "0", *flags]


def train_resume_changed_settings(tmp, s):
    config = json.loads((s["run"] / "config.json").read_text())
    return (_resume_shared_run(s, "--lr", "0.5", "--batch-size", "16"),
            [f"learning_rate: {config['learning_rate']!r} -> 0.5", f"batch_size: {config['batch_size']!r} -> 16"])


def train_resume_other_model(tmp, s):
    return _resume_shared_run(s, name="resnet20"), ["'lenet5'", "'resnet20'"]


def train_resume_other_dataset(tmp, s):
    return _resume_shared_run(s, "--dataset", "fashion_mnist"), ["'digits'", "'fashion_mnist'"]


def train_warmup_over_epochs(tmp, s):
    return _train_lenet5(tmp, "--epochs", "2", "--warmup", "3"), ["warmup_epochs", "epochs (2", "received 3"]


def train_folder_one_class(tmp, s):
    from PIL import Image

    (tmp / "oneclass" / "cat").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), 40 * i, "uint8")).save(tmp / "oneclass" / "cat" / f"{i}.png")
    return (["train", "lenet5", "--dataset", "folder", "--data-dir", tmp / "oneclass", "--epochs", "1",
             "--output", tmp / "out"], ["oneclass", "'cat'", "2 classes"])


def tune_directory_is_a_file(tmp, s):
    return (["tune", "--family", "lenet", "--max-trials", "1", "--epochs", "1", "--directory", _text(tmp / "afile")],
            ["afile", "is a file"])


def tune_max_trials_0(tmp, s):
    return (["tune", "--family", "lenet", "--max-trials", "0", "--epochs", "1", "--directory", tmp / "out"],
            ["max_trials", re.compile(r"received 0\b")])


def tflite_bench_runs_0(tmp, s):
    return ["tflite-bench", _text(tmp / "model.tflite"), "--runs", "0"], ["runs", re.compile(r"received 0\b")]


def tflite_bench_warmup_negative(tmp, s):
    return ["tflite-bench", _text(tmp / "model.tflite"), "--warmup", "-1"], ["warmup", "received -1"]


def export_savedmodel_quantize(tmp, s):
    return (["export", "lenet5", "--format", "savedmodel", "--quantize", "int8", "--output", tmp / "exported"],
            ["--quantize int8", "tflite"])


def export_keep_float_misspelled(tmp, s):
    return (["export", "mobilenet_v3_small", "--input-shape", "32,32,3", "--format", "tflite", "--quantize", "int8",
             "--calibration-data", "digits", "--calibration-count", "8", "--keep-float", "stem_cnv", "--output",
             tmp / "exported"], ["'stem_cnv'", "stem_conv"])


def export_keep_float_without_int8(tmp, s):
    return (["export", "lenet5", "--format", "tflite", "--keep-float", "ADD", "--output", tmp / "exported"],
            ["--keep-float", "--quantize int8"])


def export_keep_float_auto_with_names(tmp, s):
    return (["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--keep-float", "auto,ADD", "--output",
             tmp / "exported"], ["'auto'", "alone", "'ADD'"])


def export_op_costs_without_auto(tmp, s):
    return (["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--op-costs", tmp / "costs.json",
             "--output", tmp / "exported"], ["--op-costs", "--keep-float auto"])


def export_op_costs_missing(tmp, s):
    return (["export", "lenet5", "--format", "tflite", "--quantize", "int8", "--keep-float", "auto", "--op-costs",
             tmp / "no_such_costs.json", "--output", tmp / "exported"], ["cost table", "no_such_costs.json"])


def models_pattern_with_write(tmp, s):
    return ["models", "lenet*", "--write", tmp / "MODELS.md"], ["'lenet*'", "--write"]


def evaluate_keras_file_without_run_config(tmp, s):
    return ["evaluate", s["files"] / "mnv3.keras"], ["mnv3.keras", "--dataset"]


def explain_unknown_layer(tmp, s):
    return ["explain", s["run"], s["files"] / "seven.png", "--layer", "c3_ac"], ["'c3_ac'", "c3_act", "P1"]


def explain_unknown_class(tmp, s):
    return ["explain", s["run"], s["files"] / "seven.png", "--class", "eleven"], ["'eleven'", "class index 0..9"]


def explain_unknown_method(tmp, s):
    return ["explain", s["run"], s["files"] / "seven.png", "--method", "gradcm"], ["gradcm", "gradcam"]


def explain_without_images(tmp, s):
    return ["explain", s["run"], "--method", "occlusion"], ["occlusion", "at least one image"]


def explain_text_as_png(tmp, s):
    return ["explain", s["run"], _text(tmp / "x.png")], ["x.png"]


def explain_layer_for_occlusion(tmp, s):
    return (["explain", s["run"], s["files"] / "seven.png", "--method", "occlusion", "--layer", "P1"],
            ["occlusion", "'P1'"])


def explain_occlusion_square_too_big(tmp, s):
    return (["explain", s["run"], s["files"] / "seven.png", "--method", "occlusion", "--size", "99"],
            ["size=99", "1..32"])


CASES = [predict_text_as_png, predict_missing_image, predict_folder_without_images, train_folder_empty,
         train_folder_corrupt_png, train_idx_gz_cut_in_half, train_idx_payload_short, train_epochs_0,
         train_lr_negative, train_batch_size_0, train_option_bad_value, train_option_unknown, train_unknown_model,
         train_weights_imagenet_none_published,
         export_format_onnx, summary_two_dims, info_misspelled, evaluate_empty_keras, evaluate_truncated_keras,
         evaluate_not_a_classifier, export_truncated_keras, predict_truncated_keras,
         evaluate_run_without_checkpoints, export_empty_run_folder, tflite_bench_missing, tflite_bench_not_tflite,
         # issue #33: a resume that would change the run, and cases that ended in a traceback or never ended
         train_resume_changed_settings, train_resume_other_model, train_resume_other_dataset,
         train_warmup_over_epochs, train_folder_one_class, tune_directory_is_a_file, tune_max_trials_0,
         tflite_bench_runs_0, tflite_bench_warmup_negative, export_savedmodel_quantize, models_pattern_with_write,
         evaluate_keras_file_without_run_config,
         # issue #36: selective quantization's names
         export_keep_float_misspelled, export_keep_float_without_int8, export_keep_float_auto_with_names,
         export_op_costs_without_auto, export_op_costs_missing,
         # issue #37: keras-cnn explain
         explain_unknown_layer, explain_unknown_class, explain_unknown_method, explain_without_images,
         explain_text_as_png, explain_layer_for_occlusion, explain_occlusion_square_too_big]


FRESH_PROCESS_CASES = [export_format_onnx, train_idx_gz_cut_in_half, evaluate_truncated_keras, info_misspelled,
                       tflite_bench_not_tflite, train_resume_changed_settings, export_keep_float_misspelled,
                       explain_unknown_layer]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_user_error_is_one_line_and_leaves_nothing(case, tmp_path, shared, runner):
    check_case(case, tmp_path, shared, runner)


@pytest.mark.parametrize("case", FRESH_PROCESS_CASES, ids=[c.__name__ for c in FRESH_PROCESS_CASES])
def test_user_error_in_its_own_keras_cnn_process(case, tmp_path, shared):
    check_case(case, tmp_path, shared, run_cli)


def check_case(case, tmp_path, shared, run):
    argv, names = case(tmp_path, shared)
    before, shared_before = snapshot(tmp_path), snapshot(shared["root"])
    run_config = (shared["run"] / "config.json").read_bytes()

    error_line(run(argv, cwd=tmp_path), *names)

    # Nothing half-written: no run folder, no export, no default runs/ or savedmodels/ in the working
    # folder, no temporary file anywhere, and the shared run untouched.
    assert not (tmp_path / "out").exists(), "a failed train left its --output folder"
    exported = tmp_path / "exported"
    assert not exported.exists() or not any(exported.iterdir()), f"a failed export left {list(exported.iterdir())}"
    assert snapshot(tmp_path) == before, f"new files: {sorted(snapshot(tmp_path) - before)}"
    assert snapshot(shared["root"]) == shared_before, f"new files: {sorted(snapshot(shared['root']) - shared_before)}"
    assert (shared["run"] / "config.json").read_bytes() == run_config, "the shared run's config.json was rewritten"
    assert temporary_files(tmp_path) == [] and temporary_files(shared["root"]) == []


def test_resume_trains_longer_records_it_and_otherwise_keeps_config(tmp_path, shared, runner):
    """Issue #33: ``--resume --epochs N+1`` on a finished run trains one epoch more and records the change in
    ``config.json`` and the summary (``resumes``); a plain ``--resume`` (no flags: nothing counts as changed)
    works and leaves ``config.json`` byte for byte. Runs on a copy of the shared run, in the runner process."""
    run = tmp_path / "run"
    shutil.copytree(shared["run"], run)
    stored = json.loads((run / "config.json").read_text())
    epochs = stored["epochs"]

    longer = runner(["train", "lenet5", "--output", run, "--resume", "--epochs", epochs + 1, "--verbose", "0"],
                    cwd=tmp_path)
    assert longer.returncode == 0, longer.stderr[-6000:]
    record = [{"at_epoch": epochs, "changed": {"epochs": [epochs, epochs + 1]}}]
    summary = json.loads(longer.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == epochs + 1 and summary["resumes"] == record, summary
    assert json.loads((run / "config.json").read_text()) == {**stored, "epochs": epochs + 1, "resumes": record}
    with open(run / "history.csv", newline="") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(epochs + 1))  # one epoch more

    config = (run / "config.json").read_bytes()
    again = runner(["train", "lenet5", "--output", run, "--resume", "--verbose", "0"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-6000:]
    assert (run / "config.json").read_bytes() == config
    assert json.loads(again.stdout.strip().splitlines()[-1])["resumes"] == record
