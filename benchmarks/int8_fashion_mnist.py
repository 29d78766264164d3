"""int8 accuracy on real data beyond digits: MobileNetV3 trained on Fashion-MNIST, float32 Keras top-1 against
the int8 ``.tflite`` file's top-1 on the whole 10,000-image test split (issue 21's record).

    python benchmarks/int8_fashion_mnist.py --model mobilenet_v3_small --epochs 3 \\
        --output benchmarks/results/int8_fashion_mnist_mobilenet_v3_small.json

Training is ``keras_cnn.train`` at 32x32, 1 channel (the package recipe otherwise); the int8 file is
exported as ``keras-cnn export --quantize int8`` does (``export_tflite``: the int8 rewrites, per-channel
weights), calibrated on the first ``--calibration`` training images; both are run on the same prepared
test images. ``--mixed`` adds the latency-aware mixed file (``--keep-float auto``). Needs Debian's
``dataset-fashion-mnist`` (or ``--data-dir`` with the IDX files).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import keras_cnn
from keras_cnn import data
from keras_cnn.deploy.export import export_tflite, run_tflite


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v3_small")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--calibration", type=int, default=256)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--mixed", action="store_true", help="also export with keep_float='auto' (issue 36)")
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/int8_fashion_mnist_<model>.json")
    args = parser.parse_args(argv)
    args.output = args.output or Path(f"benchmarks/results/int8_fashion_mnist_{args.model}.json")
    started = time.time()
    with tempfile.TemporaryDirectory() as folder:
        result = keras_cnn.train(args.model, "fashion_mnist", output=Path(folder) / "run", epochs=args.epochs,
                                 image_size=args.image_size, channels=1, data_dir=args.data_dir, verbose=2)
        train_arrays = data.load_arrays("fashion_mnist", "train", data_dir=args.data_dir)
        test_arrays = data.load_arrays("fashion_mnist", "test", data_dir=args.data_dir)
        size = args.image_size
        test_images = data.prepare_images(test_arrays.images, size, 1).numpy()
        calibration = data.prepare_images(train_arrays.images[:args.calibration], size, 1).numpy()
        keras_top1 = float(np.mean(result.model.predict(test_images, batch_size=256, verbose=0).argmax(-1)
                                   == test_arrays.labels))
        path = Path(folder) / "int8.tflite"
        report = export_tflite(result.model, path, quantize="int8", representative_data=calibration,
                               verify_data=test_images[:500])
        int8_top1 = float(np.mean(run_tflite(path, test_images).argmax(-1) == test_arrays.labels))
        mixed = {}
        if args.mixed:  # issue 36: keep_float="auto" on this CPU; the chosen mix also unchecked, for its accuracy
            for key, check in (("auto", True), ("chosen_mix", False)):
                mixed_path = Path(folder) / f"{key}.tflite"
                mixed_report = export_tflite(result.model, mixed_path, quantize="int8", representative_data=calibration,
                                             verify_data=test_images[:500], keep_float="auto", speed_check=check)
                top1 = float(np.mean(run_tflite(mixed_path, test_images).argmax(-1) == test_arrays.labels))
                details = {k: v for k, v in mixed_report["quantization"]["mixed"].items()
                           if k not in ("kept_float", "cost_table")}  # the cache path is this machine's
                mixed[key] = {"top1": round(top1, 4), "minus_float_points": round(100 * (top1 - keras_top1), 2),
                              "op_precisions": mixed_report["quantization"]["op_precisions"], **details}
    row = {"model": args.model, "dataset": "fashion_mnist", "epochs": args.epochs, "input": [size, size, 1],
           "test_images": len(test_arrays.labels), "keras_float32_top1": round(keras_top1, 4),
           "tflite_int8_top1": round(int8_top1, 4), "int8_minus_float_points": round(100 * (int8_top1 - keras_top1), 2),
           "train_summary_test_top1": result.summary["test_top1"], "calibration_images": len(calibration),
           "quantization": report["quantization"], "xnnpack_partitions": report["xnnpack_partitions"],
           "ops_outside_xnnpack": report["ops_outside_xnnpack"], **({"mixed": mixed} if mixed else {}),
           "seconds": round(time.time() - started, 1),
           "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(row))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
