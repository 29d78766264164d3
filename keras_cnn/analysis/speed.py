"""Speed against keras.applications, measured side by side in one process (``keras-cnn bench``).

- :func:`train_speed`: images/s of one training step (SGD + cross-entropy, same input, batch,
  backend and compile settings) for our model and its keras.applications twin, the two timed in
  alternation for several rounds; the ratio is our step time over theirs (<= 1.05 is "no slower").
  Rows also give the MACs ratio of the two graphs and the time ratio per MAC: where the twins are
  not the same network (keras.applications' ResNet50V2 strides at the end of each stage, TF-slim
  style, 15% fewer MACs than the paper's layout; VGG16 off 224x224 flattens where torchvision
  pools to 7x7) the per-MAC ratio says whether the implementation is slower.
- :func:`latency`: batch-1 Keras ``predict_on_batch`` latency and TFLite latency (float32 and int8,
  both exported through :func:`keras_cnn.deploy.export.export_tflite`, XNNPACK on), ours beside theirs
  where keras.applications has the architecture, with each file's XNNPACK partitions;
  :func:`int8_summary` turns its rows into the int8-vs-float32 table (speed-up, partitions).
- :func:`repvgg_speedup`: the train-time RepVGG graph against its fused deploy form, in Keras and
  TFLite, with the speed-up ratio.

Every function returns rows (dicts) that :func:`write_json` stores with the machine, backend and
settings; times are medians of per-round medians. Absolute times mean something only on the
machine they were taken on; the ratios are the point.

Example:
    >>> from keras_cnn.analysis.speed import train_speed
    >>> rows = train_speed(["mobilenet_v2"], image_size=96, batch_size=4, rounds=2, steps=1)
    >>> rows[0]["keras_applications"]
    'MobileNetV2'
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from keras_cnn.analysis.counting import count_macs
from keras_cnn.atomic import write_text
from keras_cnn.deploy.export import export_tflite
from keras_cnn.deploy.reparameterize import reparameterize
from keras_cnn.deploy.tflite import tflite_latency
from keras_cnn.registry import build, get_spec, list_models

#: our name -> (keras.applications constructor, our build options that match its layout), gathered
#: at import from the ``Variant(keras_applications=...)`` rows of the families (``models/<family>.py``;
#: keras.applications' ResNet50/101/152 are the original v1, stride in the first 1x1 conv).
KERAS_APPLICATIONS = {
    name: get_spec(name).keras_applications for name in list_models() if get_spec(name).keras_applications
}
NO_PREPROCESSING = ("MobileNetV3Small", "MobileNetV3Large")  # theirs would add a Rescaling layer


def check_names(names, *, paired=False) -> list[str]:
    """Registry names (unknown ones raise with close matches); ``paired``: only those with a
    keras.applications twin."""
    if isinstance(names, str):
        names = [names]
    names = [get_spec(n).name for n in names]
    if paired:
        unpaired = [n for n in names if n not in KERAS_APPLICATIONS]
        if unpaired:
            raise ValueError(f"no keras.applications equivalent for {unpaired}; "
                             f"the shared architectures are {sorted(KERAS_APPLICATIONS)}")
    return names


def _input_shape(name, image_size):
    spec = get_spec(name)
    if image_size is None:
        return tuple(spec.input_shape)
    if image_size < spec.min_input_size:
        raise ValueError(f"{name} needs at least {spec.min_input_size}x{spec.min_input_size} input, "
                         f"received image_size={image_size}")
    return (image_size, image_size, spec.input_shape[-1])


def ours(name, input_shape, num_classes=1000):
    """Our model, built with the options that match its keras.applications twin."""
    options = KERAS_APPLICATIONS.get(name, (None, {}))[1]
    return build(name, input_shape=input_shape, num_classes=num_classes, **options)


def theirs(name, input_shape, num_classes=1000):
    """The keras.applications twin of ``name`` with random weights."""
    import keras

    constructor = KERAS_APPLICATIONS[name][0]
    kwargs = {"include_preprocessing": False} if constructor in NO_PREPROCESSING else {}
    return getattr(keras.applications, constructor)(weights=None, input_shape=input_shape, classes=num_classes,
                                                     **kwargs)


def _batch(input_shape, batch_size, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((batch_size, *input_shape)).astype("float32")
    y = np.eye(num_classes, dtype="float32")[rng.integers(0, num_classes, batch_size)]
    return x, y


def _median_of_rounds(timers: dict, rounds: int) -> dict:
    """Call each timer once per round, alternating; ``{key: median seconds}``."""
    samples = {key: [] for key in timers}
    for _ in range(rounds):
        for key, timer in timers.items():
            samples[key].append(timer())
    return {key: statistics.median(values) for key, values in samples.items()}


def _release():
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


# --------------------------------------------------------------------------- training step
def _step_timer(model, x, y, steps):
    def timer():
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        return (time.perf_counter() - start) / steps
    return timer


def train_speed(names, *, image_size=None, batch_size=8, num_classes=1000, rounds=5, steps=2, warmup=2,
                jit_compile=False, progress=None) -> list[dict]:
    """Training-step throughput, ours vs keras.applications (names must have a twin);
    ``progress(row)`` is called as each model finishes."""
    import keras

    rows = []
    for name in check_names(names, paired=True):
        shape = _input_shape(name, image_size)
        x, y = _batch(shape, batch_size, num_classes)
        models = {"ours": ours(name, shape, num_classes), "keras": theirs(name, shape, num_classes)}
        macs = {k: count_macs(m) for k, m in models.items()}
        for model in models.values():
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy",
                          jit_compile=jit_compile)
            for _ in range(warmup):  # traces the step
                model.train_on_batch(x, y)
        seconds = _median_of_rounds({k: _step_timer(m, x, y, steps) for k, m in models.items()}, rounds)
        rows.append({"model": name, "keras_applications": KERAS_APPLICATIONS[name][0], "input": list(shape),
                     "batch_size": batch_size, "ours_images_per_s": round(batch_size / seconds["ours"], 2),
                     "keras_images_per_s": round(batch_size / seconds["keras"], 2),
                     "ours_step_ms": round(seconds["ours"] * 1e3, 2), "keras_step_ms": round(seconds["keras"] * 1e3, 2),
                     "ratio_ours_over_keras": round(seconds["ours"] / seconds["keras"], 3),
                     "macs_ratio_ours_over_keras": round(macs["ours"] / macs["keras"], 3),
                     "ratio_per_mac": round(seconds["ours"] / seconds["keras"] * macs["keras"] / macs["ours"], 3)})
        if progress:
            progress(rows[-1])
        del models
        _release()
    return rows


# --------------------------------------------------------------------------- inference latency
def _predict_timer(model, x, runs):
    def timer():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model.predict_on_batch(x)
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    return timer


def _tflite_timer(path, threads, runs, warmup):
    def timer():
        result = tflite_latency(path, threads=(threads,), runs=runs, warmup=warmup)
        return next(iter(result.values()))["median_ms"] / 1e3
    return timer


#: ``bench latency`` modes: TFLite files, each as :func:`keras_cnn.deploy.export.export_tflite` writes it
LATENCY_MODES = {"float32": {}, "float16": {"quantize": "float16"}, "dynamic": {"quantize": "dynamic"},
                 "int8": {"quantize": "int8"}, "mixed": {"quantize": "int8", "keep_float": "auto"}}


def _export(model, folder, tag, mode, shape, **options):
    path = Path(folder) / f"{tag}_{mode}.tflite"
    representative = np.random.default_rng(0).random((16, *shape)).astype("float32")
    report = export_tflite(model, path, representative_data=representative, **LATENCY_MODES[mode], **options)
    return path, report


def latency(names, *, image_size=None, num_classes=1000, rounds=3, runs=20, warmup=5, threads=1,
            modes=("float32", "int8"), keras_predict=True) -> list[dict]:
    """Batch-1 latency in Keras and TFLite (``modes``), ours beside keras.applications' twin. TFLite
    rows also give each file's XNNPACK partitions, the share of its ops XNNPACK takes and the ops
    left outside (see :func:`int8_summary` for the int8-vs-float32 table). Every TFLite file of a model
    (each mode, ours and theirs) is timed in the same alternating rounds. ``"mixed"`` is int8 with
    ``keep_float="auto"``: float32 kept where int8 is slower on this CPU (measured per op)."""
    for mode in modes:
        if mode not in LATENCY_MODES:
            raise ValueError(f"latency mode must be one of {list(LATENCY_MODES)}, received {mode!r}")
    rows = []
    for name in check_names(names):
        shape = _input_shape(name, image_size)
        x = _batch(shape, 1, num_classes)[0]
        models = {"ours": ours(name, shape, num_classes)}
        if name in KERAS_APPLICATIONS:
            models["keras"] = theirs(name, shape, num_classes)
        measured = {"keras_predict": _keras_predict_seconds(models, x, warmup, runs, rounds)} if keras_predict else {}
        graphs = {}
        with tempfile.TemporaryDirectory() as folder:
            exported = {(mode, k): _export(m, folder, k, mode, shape) for mode in modes for k, m in models.items()}
            seconds = _median_of_rounds({key: _tflite_timer(path, threads, runs, warmup)
                                         for key, (path, _) in exported.items()}, rounds)
            for (mode, k), (_, report) in exported.items():
                graphs.setdefault(f"tflite_{mode}", {})[k] = report
                measured.setdefault(f"tflite_{mode}", {})[k] = seconds[(mode, k)]
        for runtime, seconds in measured.items():
            row = {"model": name, "keras_applications": KERAS_APPLICATIONS.get(name, (None,))[0],
                   "runtime": runtime, "input": list(shape), "threads": threads if runtime != "keras_predict" else None,
                   "ours_ms": round(seconds["ours"] * 1e3, 3)}
            if "keras" in seconds:
                row.update({"keras_ms": round(seconds["keras"] * 1e3, 3),
                            "ratio_ours_over_keras": round(seconds["ours"] / seconds["keras"], 3)})
            for who, report in graphs.get(runtime, {}).items():
                row.update({f"{who}_partitions": report["xnnpack_partitions"],
                            f"{who}_xnnpack_share": report["xnnpack_delegated_fraction"],
                            f"{who}_outside_xnnpack": report["ops_outside_xnnpack"]})
                mixed = report.get("quantization", {}).get("mixed")
                if mixed:  # what the written file is (the chosen mix, or the all-int8 or float32 file that beat it)
                    counts = report["quantization"]["op_precisions"]["ops"].values()
                    row.update({f"{who}_mixed_chosen": mixed["chosen"],
                                f"{who}_float_ops": sum(c.get("float32", 0) for c in counts),
                                f"{who}_ops": sum(sum(c.values()) for c in counts)})
            rows.append(row)
        del models
        _release()
    return rows


def int8_summary(rows) -> list[dict]:
    """One row per model from :func:`latency` rows that have both TFLite modes: float32 and int8
    milliseconds, int8's speed-up (float32 time / int8 time), the int8 file's XNNPACK partitions,
    share of ops and ops left outside, and keras.applications' int8 beside ours where it has a twin."""
    by_model = {}
    for row in rows:
        by_model.setdefault(row["model"], {})[row["runtime"]] = row
    summary = []
    for name, runtimes in by_model.items():
        float32, int8 = runtimes.get("tflite_float32"), runtimes.get("tflite_int8")
        if not (float32 and int8):
            continue
        entry = {"model": name, "input": int8["input"], "threads": int8["threads"],
                 "float32_ms": float32["ours_ms"], "int8_ms": int8["ours_ms"],
                 "int8_speedup": round(float32["ours_ms"] / int8["ours_ms"], 2),
                 "int8_partitions": int8["ours_partitions"], "int8_xnnpack_share": int8["ours_xnnpack_share"],
                 "int8_outside_xnnpack": ", ".join(f"{op} x{n}" for op, n in int8["ours_outside_xnnpack"].items())}
        mixed = runtimes.get("tflite_mixed")
        if mixed:  # the latency-aware file: its speed-up over float32, and over the all-int8 file
            entry.update({"mixed_ms": mixed["ours_ms"],
                          "mixed_speedup": round(float32["ours_ms"] / mixed["ours_ms"], 2),
                          "mixed_vs_int8": round(int8["ours_ms"] / mixed["ours_ms"], 2),
                          "mixed_chosen": mixed["ours_mixed_chosen"],
                          "mixed_float_ops": f"{mixed['ours_float_ops']}/{mixed['ours_ops']}",
                          "mixed_partitions": mixed["ours_partitions"]})
        if "keras_ms" in int8:
            entry.update({"keras_applications": int8["keras_applications"], "keras_int8_ms": int8["keras_ms"],
                          "keras_int8_speedup": round(float32["keras_ms"] / int8["keras_ms"], 2),
                          "keras_int8_partitions": int8["keras_partitions"]})
        summary.append(entry)
    return summary


def _keras_predict_seconds(models: dict, x, warmup, runs, rounds) -> dict:
    """Median seconds of one batch-1 ``predict_on_batch`` per model, warmed up, alternating rounds."""
    for model in models.values():
        for _ in range(warmup):
            model.predict_on_batch(x)
    return _median_of_rounds({k: _predict_timer(m, x, runs) for k, m in models.items()}, rounds)


def repvgg_speedup(name="repvgg_a0", *, image_size=None, rounds=5, runs=20, warmup=5, threads=1) -> list[dict]:
    """Train-time vs deployed (fused) RepVGG: Keras predict and TFLite float32 latency, batch 1."""
    if get_spec(name).family != "repvgg":
        raise ValueError(f"repvgg_speedup takes a RepVGG variant, received {name!r}")
    shape = _input_shape(name, image_size)
    x = _batch(shape, 1, 1000)[0]
    train_graph = ours(name, shape)
    models = {"train": train_graph, "deploy": reparameterize(train_graph)}
    measured = {"keras_predict": _keras_predict_seconds(models, x, warmup, runs, rounds)}
    with tempfile.TemporaryDirectory() as folder:
        exported = {"train": _export(train_graph, folder, "train", "float32", shape, fuse_repvgg=False),
                    "deploy": _export(train_graph, folder, "deploy", "float32", shape)}
        files = {k: path for k, (path, _) in exported.items()}
        ops = {k: report["op_count"] for k, (_, report) in exported.items()}
        measured["tflite_float32"] = _median_of_rounds(
            {k: _tflite_timer(f, threads, runs, warmup) for k, f in files.items()}, rounds)
    rows = []
    for runtime, seconds in measured.items():
        rows.append({"model": name, "runtime": runtime, "input": list(shape),
                     "threads": threads if runtime != "keras_predict" else None,
                     "train_ms": round(seconds["train"] * 1e3, 3), "deploy_ms": round(seconds["deploy"] * 1e3, 3),
                     "speedup": round(seconds["train"] / seconds["deploy"], 3),
                     **({"train_ops": ops["train"], "deploy_ops": ops["deploy"]}
                        if runtime.startswith("tflite") else {})})
    _release()
    return rows


# --------------------------------------------------------------------------- reporting
def environment() -> dict:
    """Where the numbers were taken: machine, CPU count, backend, versions, accelerator."""
    import keras

    devices = []
    with contextlib.suppress(Exception):
        devices = [str(d) for d in keras.distribution.list_devices()]
    return {"machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
            "cpu_count": os.cpu_count(), "backend": keras.backend.backend(), "keras": keras.__version__,
            "devices": devices, "date": time.strftime("%Y-%m-%d")}


def write_json(kind, rows, path, **settings) -> Path:
    """``{"kind", "environment", "settings", "rows"}`` written atomically to ``path``."""
    return write_text(path, json.dumps({"kind": kind, "environment": environment(), "settings": settings,
                                        "rows": rows}, indent=2) + "\n")


def markdown_table(rows, columns=None) -> str:
    """Rows as a Markdown table (missing cells are blank)."""
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join("" if row.get(c) is None else str(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)
