"""int8 vs float32 TFLite latency on a CPU that has no TensorFlow: export the files here, time them there.

XNNPACK's int8 kernels beat its float32 ones only where the CPU has int8 dot-product instructions:
SDOT on a phone's Arm cores, VNNI on x86 (``benchmarks/RESULTS.md``). ``keras-cnn bench latency``
exports and times in one process, so the timing machine needs TensorFlow. This script splits it:

    python benchmarks/int8_latency_files.py export FOLDER --compressible   # with TensorFlow + keras_cnn
    tar cJf int8_files.tar.xz -C FOLDER .
    python benchmarks/int8_latency_files.py time FOLDER --output int8-latency.json   # numpy + ai_edge_litert

``export`` builds each mobile-line net (the 17 of issue 21, deployed RepVGG included) at 224x224 with
1000 classes, and keras.applications' twin where one exists, and writes their float32 and int8
files exactly as ``bench latency`` does (``keras_cnn.analysis.speed``: the same build options,
``export_tflite``, 16 calibration images), with ``manifest.json`` holding each file's XNNPACK
partitions, share of ops and ops left outside. ``--compressible`` makes every weight array its own
first 4099 random values repeated, so that the folder compresses to a few MB for shipping (dense
kernels take the same time whatever the values; float weights keep their initializer's scale, so no
denormals appear).

Mixed int8 (issue 36: ``keep_float="auto"`` for another CPU): ``export`` also writes each net's calibrated
float graph and its full quantization (not timed); ``costs`` times their one-op files there (needs keras_cnn
and Keras, no TensorFlow: ``KERAS_BACKEND=jax``) into one cost table; ``mixed``, back here, writes each net's
mixed file chosen from that table into the folder; ``time`` then times it beside float32 and int8:

    python benchmarks/int8_latency_files.py costs FOLDER --output costs.json          # there
    python benchmarks/int8_latency_files.py mixed FOLDER --op-costs costs.json        # here (TensorFlow)
    python benchmarks/int8_latency_files.py time FOLDER --output mixed-latency.json   # there

``time`` needs only numpy and ``ai_edge_litert``: it loads ``keras_cnn/deploy/tflite.py`` by path
(the ``tflite_latency`` that ``bench latency`` uses) and times each model's files one after the other,
for several rounds, in one process (median of the per-round medians, 1 thread, XNNPACK on). Its rows
have the columns of ``keras_cnn.analysis.speed.int8_summary`` plus the CPU's name and flags.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import time
from pathlib import Path

NETS = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
        "shufflenet_v1_g1", "shufflenet_v1_g2", "shufflenet_v1_g3", "shufflenet_v1_g4", "shufflenet_v1_g8",
        "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
        "squeezenet1_0", "squeezenet1_1", "repvgg_a0", "repvgg_b0")
MODES = ("float32", "int8")
PERIOD = 4099  # a prime: the repeats do not line up with channel counts
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "asimddp", "i8mm")


def make_compressible(model):
    """Every weight array becomes its first ``PERIOD`` values repeated (same scale, same shapes)."""
    import numpy as np

    for variable in model.weights:
        values = np.asarray(variable.numpy())
        variable.assign(np.resize(values.ravel()[:PERIOD], values.shape).astype(values.dtype))


def manifest_file(path: Path, report: dict) -> dict:
    """A written file's manifest entry: its name and size and the gist of its export report (which it
    replaces: the report beside it is deleted, so the folder holds only what the timing machine needs)."""
    Path(f"{path}.json").unlink(missing_ok=True)
    return {"file": path.name, "bytes": path.stat().st_size, "partitions": report["xnnpack_partitions"],
            "xnnpack_share": report["xnnpack_delegated_fraction"], "outside_xnnpack": report["ops_outside_xnnpack"]}


def export(folder: Path, names, compressible: bool):
    import numpy as np

    from keras_cnn.analysis import speed
    from keras_cnn.deploy.export import calibrated_graphs

    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name in names:
        shape = speed._input_shape(name, 224)
        models = {"ours": speed.ours(name, shape)}
        if name in speed.KERAS_APPLICATIONS:
            models["keras"] = speed.theirs(name, shape)
        entry = manifest[name] = {"input": list(shape),
                                  "keras_applications": speed.KERAS_APPLICATIONS.get(name, (None,))[0], "files": {}}
        for who, model in models.items():
            if compressible:
                make_compressible(model)
            for mode in MODES:
                path, report = speed._export(model, folder, f"{name}.{who}", mode,
                                             shape)
                entry["files"][f"{who}_{mode}"] = manifest_file(path, report)
                print(name, who, mode, entry["files"][f"{who}_{mode}"], flush=True)
            if who == "ours":  # for the mixed mode: the graph its costs are timed on (not timed itself)
                calibrated, quantized = calibrated_graphs(model, np.random.default_rng(0).random(
                    (16, *shape)).astype("float32"))
                entry["calibrated"] = {"float": f"{name}.calibrated.tflite", "int8": f"{name}.calibrated_int8.tflite"}
                (folder / entry["calibrated"]["float"]).write_bytes(calibrated)
                (folder / entry["calibrated"]["int8"]).write_bytes(quantized)
        del models
        speed._release()
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def costs(folder: Path, output: Path):
    """One cost table of this CPU for every exported net (``keras_cnn.deploy.mixed_int8.measure_costs``)."""
    from keras_cnn.deploy import mixed_int8

    manifest = json.loads((folder / "manifest.json").read_text())
    table = mixed_int8.CostTable(mixed_int8.machine_id(), path=output)
    for name, entry in manifest.items():
        started = time.time()
        mixed_int8.measure_costs((folder / entry["calibrated"]["float"]).read_bytes(),
                                 (folder / entry["calibrated"]["int8"]).read_bytes(), table)
        print(f"{name}: {len(table.ops)} op signatures timed so far ({time.time() - started:.0f} s)", flush=True)
    table.save(output)


def mixed(folder: Path, op_costs: Path):
    """Each net's mixed file chosen from ``op_costs`` (the other CPU's table), added to the manifest as
    ``ours_mixed`` so that ``time`` times it beside the others."""
    from keras_cnn.deploy.export import mixed_from_calibrated
    from keras_cnn.deploy.tflite import inspect_tflite

    manifest = json.loads((folder / "manifest.json").read_text())
    for name, entry in manifest.items():
        data, choice = mixed_from_calibrated((folder / entry["calibrated"]["float"]).read_bytes(),
                                             (folder / entry["calibrated"]["int8"]).read_bytes(), op_costs)
        path = folder / f"{name}.ours_mixed.tflite"
        path.write_bytes(data)
        graph = inspect_tflite(data)
        entry["files"]["ours_mixed"] = {"file": path.name, "bytes": len(data),
                                        "partitions": graph["xnnpack_partitions"],
                                        "xnnpack_share": graph["xnnpack_delegated_fraction"],
                                        "outside_xnnpack": graph["ops_outside_xnnpack"],
                                        "kept_float_ops": len(choice.keep_float), "predicted_ms": choice.predicted_ms}
        print(name, entry["files"]["ours_mixed"], flush=True)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _tflite_module():
    """keras_cnn/deploy/tflite.py on its own: numpy and ai_edge_litert, no Keras or TensorFlow."""
    path = Path(__file__).resolve().parents[1] / "keras_cnn" / "deploy" / "tflite.py"
    spec = importlib.util.spec_from_file_location("keras_cnn_tflite", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu() -> dict:
    info = {"machine": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    info["model_name"] = fields.get("model name") or fields.get("Model name") or fields.get("CPU part")
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    info["flags"] = {flag: flag in flags for flag in CPU_FLAGS}
    return info


def time_files(folder: Path, rounds: int, runs: int, warmup: int, threads: int) -> list[dict]:
    tflite = _tflite_module()
    manifest = json.loads((folder / "manifest.json").read_text())
    rows = []
    for name, entry in manifest.items():
        files = entry["files"]
        outside = files["ours_int8"]["outside_xnnpack"]
        samples = {key: [] for key in files}
        for _ in range(rounds):  # alternating: drift hits every file alike
            for key, described in files.items():
                result = tflite.tflite_latency(folder / described["file"], threads=(threads,), runs=runs,
                                               warmup=warmup)
                samples[key].append(next(iter(result.values()))["median_ms"])
        ms = {key: round(statistics.median(values), 3) for key, values in samples.items()}
        row = {"model": name, "input": entry["input"], "threads": threads,
               "float32_ms": ms["ours_float32"], "int8_ms": ms["ours_int8"],
               "int8_speedup": round(ms["ours_float32"] / ms["ours_int8"], 2),
               "int8_partitions": files["ours_int8"]["partitions"],
               "int8_xnnpack_share": files["ours_int8"]["xnnpack_share"],
               "int8_outside_xnnpack": ", ".join(f"{op} x{n}" for op, n in outside.items())}
        if "keras_int8" in files:
            row.update({"keras_applications": entry["keras_applications"], "keras_float32_ms": ms["keras_float32"],
                        "keras_int8_ms": ms["keras_int8"],
                        "keras_int8_speedup": round(ms["keras_float32"] / ms["keras_int8"], 2),
                        "keras_int8_partitions": files["keras_int8"]["partitions"]})
        if "ours_mixed" in files:
            row.update({"mixed_ms": ms["ours_mixed"], "mixed_speedup": round(ms["ours_float32"] / ms["ours_mixed"], 2),
                        "mixed_vs_int8": round(ms["ours_int8"] / ms["ours_mixed"], 2),
                        "mixed_kept_float_ops": files["ours_mixed"]["kept_float_ops"],
                        "mixed_partitions": files["ours_mixed"]["partitions"]})
        row["all_ms"] = ms  # every file of the model, extra variants included
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown(rows) -> str:
    lines = ["| model | float32 ms | int8 ms | int8 speed-up | int8 partitions | int8 ops on XNNPACK | "
             "keras.applications int8 ms (speed-up) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        theirs = f"{r['keras_int8_ms']} ({r['keras_int8_speedup']}x)" if "keras_int8_ms" in r else ""
        lines.append(f"| {r['model']} | {r['float32_ms']} | {r['int8_ms']} | {r['int8_speedup']}x | "
                     f"{r['int8_partitions']} | {r['int8_xnnpack_share']:.0%} | {theirs} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("export", help="write the float32 and int8 files and manifest.json (needs TensorFlow)")
    p.add_argument("folder", type=Path)
    p.add_argument("--models", default=",".join(NETS))
    p.add_argument("--compressible", action="store_true", help="repeat each weight array's first values")
    p = sub.add_parser("costs", help="one-op costs of every net on this CPU (keras_cnn + ai_edge_litert, no TF)")
    p.add_argument("folder", type=Path)
    p.add_argument("--output", type=Path, required=True)
    p = sub.add_parser("mixed", help="each net's mixed file from a cost table (needs TensorFlow)")
    p.add_argument("folder", type=Path)
    p.add_argument("--op-costs", type=Path, required=True)
    p = sub.add_parser("time", help="time the files of an exported folder (numpy + ai_edge_litert only)")
    p.add_argument("folder", type=Path)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if args.step == "export":
        export(args.folder, args.models.split(","), args.compressible)
        return
    if args.step == "costs":
        costs(args.folder, args.output)
        return
    if args.step == "mixed":
        mixed(args.folder, args.op_costs)
        return
    rows = time_files(args.folder, args.rounds, args.runs, args.warmup, args.threads)
    result = {"cpu": cpu(), "date": time.strftime("%Y-%m-%d"), "runtime": "ai_edge_litert " + _litert_version(),
              "rounds": args.rounds, "runs_per_round": args.runs, "warmup": args.warmup, "rows": rows}
    print(json.dumps(result["cpu"]))
    print(markdown(rows))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")


def _litert_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    main()
