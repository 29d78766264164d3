"""The first ``fit`` step (tracing the train step, then running it) with Keras' AdamW against
keras_cnn's fused AdamW (:mod:`keras_cnn.training.optimizers`), side by side in one process.

Each net is built twice from the same seed and compiled as ``keras_cnn.train`` compiles it (the
recipe's AdamW, warm-up + cosine schedule, weight decay 1e-4, slots built before the first step);
the two optimizers alternate which traces first, and the later steps are timed in alternating
rounds. Reported per net and optimizer: the first step's seconds, the median of the later steps,
and the ops in the traced train step's graph.

    python benchmarks/first_step.py                      # the default nets, 32x32, batch 32
    python benchmarks/first_step.py resnet18 --image-size 64 --json results/first_step.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

DEFAULT_NETS = ["mobilenet_v3_small", "mobilenet_v1", "resnet20", "shufflenet_v2_x0_5", "resnet18"]


def _compiled(name, optimizer_kind, image_size):
    import keras

    import keras_cnn
    from keras_cnn.training import optimizers
    from keras_cnn.training.schedules import learning_rate_schedule

    keras.utils.set_random_seed(0)
    model = keras_cnn.build(name, num_classes=10, input_shape=(image_size, image_size, 3))
    schedule = learning_rate_schedule(1e-3, schedule="cosine", steps=1000, warmup_steps=5)
    module = keras.optimizers if optimizer_kind == "keras" else optimizers
    model.compile(module.AdamW(schedule, weight_decay=1e-4), "sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    return model


def measure(name, image_size, batch_size, steps, first="keras"):
    """Both models built and compiled, then each one's first step (its trace), then ``steps`` steps
    of each in alternating rounds of 5 (so both see the same machine)."""
    import numpy as np

    kinds = (first, "ours" if first == "keras" else "keras")
    models = {kind: _compiled(name, kind, image_size) for kind in kinds}
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch_size, image_size, image_size, 3)).astype("float32")
    y = rng.integers(0, 10, batch_size)
    rows = {}
    for kind in kinds:
        started = time.perf_counter()
        models[kind].train_on_batch(x, y)
        rows[kind] = {"model": name, "optimizer": kind, "first_step_s": round(time.perf_counter() - started, 3),
                      "variables": len(models[kind].trainable_variables)}
    times = {kind: [] for kind in kinds}
    for _ in range(max(1, steps // 5)):
        for kind in kinds:
            for _ in range(5):
                started = time.perf_counter()
                models[kind].train_on_batch(x, y)
                times[kind].append(time.perf_counter() - started)
    for kind in kinds:
        rows[kind]["step_ms"] = round(1000 * statistics.median(times[kind]), 2)
        rows[kind]["train_step_graph_ops"] = _train_step_ops(models[kind], x, y)
    return rows


def _train_step_ops(model, x, y) -> int:
    """Ops in the graph of one traced ``model.train_step`` (what the first fit step builds)."""
    import tensorflow as tf

    step = tf.function(model.train_step)
    return len(step.get_concrete_function((tf.constant(x), tf.constant(y))).graph.get_operations())


def markdown_section(record) -> str:
    """The RESULTS.md section of a ``--json`` record (``benchmarks/run_all.py`` renders it)."""
    by_model = {}
    for row in record["rows"]:
        by_model.setdefault(row["model"], {})[row["optimizer"]] = row
    env = record["environment"]
    lines = ["## First `fit` step: Keras' AdamW against the fused AdamW (`python benchmarks/first_step.py`)", "",
             f"Each net built twice from one seed at {record['image_size']}x{record['image_size']}, batch "
             f"{record['batch_size']}, compiled as `keras_cnn.train` compiles it (AdamW, warm-up + cosine, weight "
             f"decay 1e-4, slots built first), in one process (TensorFlow {env['tensorflow']}, Keras {env['keras']}, "
             f"{env['machine']}). The first step traces the whole training graph; the later steps are timed in "
             "alternating rounds of 5. Raw rows: `results/first_step.json`.", "",
             "| model | first step, Keras AdamW | first step, fused | ratio | train-step graph ops (Keras -> fused) "
             "| step ms (Keras / fused) |", "|---|---|---|---|---|---|"]
    for name, rows in by_model.items():
        theirs, ours = rows["keras"], rows["ours"]
        lines.append(f"| {name} | {theirs['first_step_s']:.1f} s | {ours['first_step_s']:.1f} s | "
                     f"{ours['first_step_s'] / theirs['first_step_s']:.2f}x | {theirs['train_step_graph_ops']} -> "
                     f"{ours['train_step_graph_ops']} | {theirs['step_ms']:.0f} / {ours['step_ms']:.0f} |")
    lines += ["", "The later steps take the same time (within the machine's noise): the kernels do the same "
              "arithmetic.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=DEFAULT_NETS)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="steps of each timed after the first")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    import keras
    import tensorflow as tf

    rows = []
    for index, name in enumerate(args.models):
        measured = measure(name, args.image_size, args.batch_size, args.steps,
                           first="keras" if index % 2 == 0 else "ours")
        keras_row, ours_row = measured["keras"], measured["ours"]
        rows += [keras_row, ours_row]
        print(f"{name}: first step {keras_row['first_step_s']:.1f} s (Keras AdamW) -> {ours_row['first_step_s']:.1f} s "
              f"(fused), {ours_row['first_step_s'] / keras_row['first_step_s']:.2f}x; graph ops "
              f"{keras_row['train_step_graph_ops']} -> {ours_row['train_step_graph_ops']}; steps "
              f"{keras_row['step_ms']:.1f} -> {ours_row['step_ms']:.1f} ms", flush=True)
    record = {"kind": "first_step", "image_size": args.image_size, "batch_size": args.batch_size,
              "environment": {"tensorflow": tf.__version__, "keras": keras.__version__,
                              "machine": platform.machine(), "processor": platform.processor() or None},
              "rows": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
