"""The first ``fit`` step (tracing the train step, then running it) with Keras' AdamW against
keras_cnn's fused AdamW (:mod:`keras_cnn.training.optimizers`), side by side in one process.

Each net is built twice from the same seed and compiled as ``keras_cnn.train`` compiles it (the
recipe's AdamW, warm-up + cosine schedule, weight decay 1e-4, slots built before the first step);
the two optimizers alternate which goes first. Reported per net and optimizer: the first step's
seconds, the median of the next steps, and the ops in the traced train step's graph.

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


def measure(name, optimizer_kind, image_size, batch_size, steps):
    import keras
    import numpy as np

    import keras_cnn
    from keras_cnn.training import optimizers
    from keras_cnn.training.schedules import learning_rate_schedule

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras_cnn.build(name, num_classes=10, input_shape=(image_size, image_size, 3))
    schedule = learning_rate_schedule(1e-3, schedule="cosine", steps=100, warmup_steps=5)
    module = keras.optimizers if optimizer_kind == "keras" else optimizers
    model.compile(module.AdamW(schedule, weight_decay=1e-4), "sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch_size, image_size, image_size, 3)).astype("float32")
    y = rng.integers(0, 10, batch_size)
    started = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - started
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - started)
    ops = _train_step_ops(model, x, y)
    return {"model": name, "optimizer": optimizer_kind, "first_step_s": round(first, 3),
            "step_ms": round(1000 * statistics.median(times), 2), "train_step_graph_ops": ops,
            "variables": len(model.trainable_variables)}


def _train_step_ops(model, x, y) -> int:
    """Ops in the graph of one traced ``model.train_step`` (what the first fit step builds)."""
    import tensorflow as tf

    step = tf.function(model.train_step)
    return len(step.get_concrete_function((tf.constant(x), tf.constant(y))).graph.get_operations())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=DEFAULT_NETS)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps timed after the first")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    import keras
    import tensorflow as tf

    rows = []
    for index, name in enumerate(args.models):
        order = ("keras", "ours") if index % 2 == 0 else ("ours", "keras")
        measured = {kind: measure(name, kind, args.image_size, args.batch_size, args.steps) for kind in order}
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
