"""int8 calibration on real photos: what a pretrained net's int8 file keeps of its float top-1.

A real ImageNet-trained MobileNetV2 (torchvision layout) scored on real labelled ImageNet photos,
float (Keras) against int8 TFLite files calibrated on:

- ``bundled``: the export's default for a net without calibration data of its own (crops of the
  package's public-domain photos, ``keras_cnn.deploy.calibration``) -- what
  ``keras-cnn export mobilenet_v2 --weights FILE --quantize int8`` does as written;
- ``digits``: scikit-learn's digits scaled to 224x224, the default before (what issue #33 measured);
- ``photos N``: N other real ImageNet photos (``--calibration-data FOLDER``), N = 10, 50, 200.

The photos are split once: the ``photos N`` rows calibrate on the first N of the first 200 files and
are scored on the last 100 (disjoint); the two default rows, which use no ImageNet photo, are scored on all 300.
The photos and the checkpoint are measurement data outside the repository (never copied in; REAL is the
folder that holds them):

    python benchmarks/int8_calibration_real.py --weights REAL/mobilenet_v2_imagenet_torchvision_layout.pth \
        --photos REAL/imagenet_photos_300 --json benchmarks/results/int8_calibration_real.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="a torchvision-layout mobilenet_v2 state_dict")
    parser.add_argument("--photos", required=True, help="folder with labels.tsv and the JPEG files")
    parser.add_argument("--name", default="mobilenet_v2")
    parser.add_argument("--json", default=None)
    parser.add_argument("--mixed", action="store_true", help="also the latency-aware mixed files (issue 36)")
    args = parser.parse_args(argv)

    import keras_cnn
    from keras_cnn import data
    from keras_cnn.data import load_images
    from keras_cnn.deploy.export import checkpoint_preprocessing, export_tflite, run_tflite

    folder = Path(args.photos)
    rows = [line.split("\t") for line in (folder / "labels.tsv").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if (folder / r[0]).is_file()]
    files, labels = [folder / r[0] for r in rows], np.array([int(r[1]) for r in rows])
    model = keras_cnn.build(args.name, weights=args.weights)
    size, channels = model.input_shape[1], model.input_shape[3]
    images = load_images(files, size, channels, checkpoint=checkpoint_preprocessing(model))
    calibration_pool, score = slice(0, 200), slice(200, None)
    float_probs = model.predict(images, batch_size=32, verbose=0)
    print(f"float top-1: all {np.mean(float_probs.argmax(-1) == labels):.4f}, "
          f"last 100 {np.mean(float_probs[score].argmax(-1) == labels[score]):.4f}", flush=True)
    float_top1 = float_probs.argmax(-1)

    def row(label, representative, scored=score, count=200, mixed=False):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            options = {"keep_float": "auto", "speed_check": False} if mixed else {}  # the chosen mix, as chosen
            report = export_tflite(model, Path(tmp) / "m.tflite", quantize="int8", representative_data=representative,
                                   calibration_count=count, verify_data=images[:8], **options)
            seconds = time.perf_counter() - started
            got = run_tflite(Path(tmp) / "m.tflite", images[scored]).argmax(-1)
        result = {"calibration": label, "calibrated_on": report["quantization"]["representative_data"],
                  "calibration_images": report["quantization"]["calibration_images"],
                  "scored_images": int(len(got)),
                  "float_top1": round(float(np.mean(float_top1[scored] == labels[scored])), 4),
                  "int8_top1": round(float(np.mean(got == labels[scored])), 4),
                  "top1_agreement": round(float(np.mean(got == float_top1[scored])), 4),
                  "export_s": round(seconds, 1)}
        if mixed:
            counts = report["quantization"]["op_precisions"]["ops"].values()
            result["float_ops"] = sum(c.get("float32", 0) for c in counts)
            result["predicted_ms"] = report["quantization"]["mixed"]["predicted_ms"]
        print(json.dumps(result), flush=True)
        return result

    results = [row("bundled (default), all 300", None, slice(None)), row("digits (old default), all 300", "digits",
                                                                         slice(None))]
    for count in (10, 50, 200):
        results.append(row(f"photos {count}", [str(f) for f in files[calibration_pool]], count=count))
    if args.mixed:  # issue 36: the latency-aware mix of this CPU (keep_float="auto"), same calibrations
        results.append(row("mixed, bundled (default), all 300", None, slice(None), mixed=True))
        results.append(row("mixed, photos 200", [str(f) for f in files[calibration_pool]], count=200, mixed=True))
    payload = {"machine": platform.processor() or platform.machine(), "model": args.name,
               "weights": Path(args.weights).name, "photos": len(files), "rows": results,
               "data_module": data.__name__}
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return payload


if __name__ == "__main__":
    main()
