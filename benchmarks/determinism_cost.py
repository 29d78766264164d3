"""What deterministic training costs: the train step with TensorFlow's op determinism on and off,
side by side in one process.

``keras_cnn.train`` turns on ``tf.config.experimental.enable_op_determinism()`` by default (the
``deterministic`` setting), so that the same command gives the same weights run after run and a
resumed run equals the uninterrupted one. Each net is built twice from one seed and compiled as
``train`` compiles it; one copy traces and runs its steps with op determinism on, the other with it
off (TensorFlow's internal ``disable_op_determinism`` switches it back between rounds), in
alternating rounds so both see the same machine. Reported per net: the median step time of each and
the ratio on/off, and, for each mode, whether a second copy trained as long ends with identical weights.

    python benchmarks/determinism_cost.py                       # lenet5, resnet20, mobilenet_v3_small
    python benchmarks/determinism_cost.py resnet18 --image-size 64 --json results/determinism_cost.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

DEFAULT_NETS = ["lenet5", "resnet20", "mobilenet_v3_small"]


def _set_determinism(on: bool):
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # the only way back once enabled

    if on:
        tf.config.experimental.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()


def _compiled(name, image_size, channels, steps):
    import keras

    import keras_cnn
    from keras_cnn.training.run import compile_model

    keras.utils.set_random_seed(0)
    model = keras_cnn.build(name, num_classes=10, input_shape=(image_size, image_size, channels))
    return compile_model(model, steps_per_epoch=steps, epochs=1)


def measure(name, image_size, batch_size, steps):
    import keras
    import numpy as np

    from keras_cnn.training.run import weights_digest

    channels = 1 if name == "lenet5" else 3
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch_size, image_size, image_size, channels)).astype("float32")
    y = keras.ops.convert_to_numpy(keras.ops.one_hot(rng.integers(0, 10, batch_size), 10))
    modes = {"on": True, "off": False}
    models = {}
    for mode, on in modes.items():
        _set_determinism(on)
        models[mode] = _compiled(name, image_size, channels, steps)
        models[mode].train_on_batch(x, y)  # trace under its own mode
    times = {mode: [] for mode in modes}
    for _ in range(max(1, steps // 5)):
        for mode, on in modes.items():
            _set_determinism(on)
            for _ in range(5):
                started = time.perf_counter()
                models[mode].train_on_batch(x, y)
                times[mode].append(time.perf_counter() - started)
    row = {"model": name, "image_size": image_size, "batch_size": batch_size, "steps": len(times["on"])}
    for mode in modes:
        row[f"step_ms_{mode}"] = round(1000 * statistics.median(times[mode]), 2)
    row["ratio_on_over_off"] = round(row["step_ms_on"] / row["step_ms_off"], 3)
    # reproducibility: a twin of each, trained in its mode for as many steps, ends with the same weights?
    for mode, on in modes.items():
        _set_determinism(on)
        twin = _compiled(name, image_size, channels, steps)
        for _ in range(1 + len(times[mode])):
            twin.train_on_batch(x, y)
        row[f"{mode}_twin_identical"] = weights_digest(twin) == weights_digest(models[mode])
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("nets", nargs="*", default=DEFAULT_NETS)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60, help="timed steps per mode (rounds of 5)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = [measure(name, args.image_size, args.batch_size, args.steps) for name in args.nets]
    import keras
    import tensorflow as tf

    result = {"what": "train step, TensorFlow op determinism on vs off, side by side in one process",
              "machine": platform.processor() or platform.machine(), "tensorflow": tf.__version__,
              "keras": keras.__version__, "rows": rows}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
