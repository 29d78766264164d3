"""TFLite latency of our mobile nets vs keras.applications, exported the same way, measured side by side.

Both models are built at 224x224x3 with 1000 classes and random weights, exported through
``keras_cnn.deploy.export.export_tflite`` (float32 clone, Conv+BN folded, batch 1, builtin ops only) in
float32 and int8, then timed through the ``ai_edge_litert`` interpreter with XNNPACK, alternating
ours and theirs for several rounds (median of the per-round medians), on 1 and 2 threads.

    python benchmarks/tflite_latency.py --rounds 5 --runs 30 --output benchmarks/results/tflite_latency.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

import keras_cnn
from keras_cnn.deploy.export import export_tflite
from keras_cnn.deploy.tflite import tflite_latency

PAIRS = {"mobilenet_v2": "MobileNetV2", "mobilenet_v3_small": "MobileNetV3Small"}


def theirs(name, shape):
    return getattr(keras.applications, PAIRS[name])(input_shape=shape, weights=None, classes=1000)


def representative(shape, count=16):
    return np.random.default_rng(0).random((count, *shape)).astype("float32")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(PAIRS))
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--modes", default="float32,int8")
    parser.add_argument("--output", default="benchmarks/results/tflite_latency.json")
    args = parser.parse_args(argv)
    shape = (args.size, args.size, 3)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            for mode in args.modes.split(","):
                quantize = None if mode == "float32" else mode
                files = {}
                for who, model in (("ours", keras_cnn.build(name, input_shape=shape)), ("keras", theirs(name, shape))):
                    path = Path(folder) / f"{who}_{name}_{mode}.tflite"
                    report = export_tflite(model, path, quantize=quantize, representative_data=representative(shape))
                    files[who] = (path, report)
                for threads in (1, 2):
                    timings = {"ours": [], "keras": []}
                    for _ in range(args.rounds):  # interleaved: drift hits both sides alike
                        for who in ("ours", "keras"):
                            result = tflite_latency(files[who][0], threads=(threads,), runs=args.runs, warmup=5)
                            timings[who].append(next(iter(result.values()))["median_ms"])
                    ours, keras_ms = float(np.median(timings["ours"])), float(np.median(timings["keras"]))
                    rows.append({"model": name, "keras_applications": PAIRS[name], "mode": mode, "threads": threads,
                                 "ours_ms": round(ours, 3), "keras_ms": round(keras_ms, 3),
                                 "ratio_ours_over_keras": round(ours / keras_ms, 3),
                                 "ours_ops": files["ours"][1]["op_count"], "keras_ops": files["keras"][1]["op_count"],
                                 "ours_bytes": files["ours"][1]["size_bytes"],
                                 "keras_bytes": files["keras"][1]["size_bytes"]})
                    print(json.dumps(rows[-1]))
    result = {"machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
              "cpu_count": __import__("os").cpu_count(), "date": time.strftime("%Y-%m-%d"),
              "input": list(shape), "rounds": args.rounds, "runs_per_round": args.runs, "rows": rows}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print("| model | mode | threads | ours ms | keras.applications ms | ours / keras |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} vs {r['keras_applications']} | {r['mode']} | {r['threads']} | {r['ours_ms']} | "
              f"{r['keras_ms']} | {r['ratio_ours_over_keras']} |")


if __name__ == "__main__":
    main()
