"""The paper's CIFAR ResNets from akamaster/pytorch_resnet_cifar10's real trained files, against that repository's
own models, on real CIFAR-10 test images.

For every ``resnet*.th`` file in ``REAL/cifar10_resnets`` (the repository's published files, its ``resnet.py``
beside them), the net is loaded three ways and each is scored on the labelled PNGs of ``REAL/cifar10_test_20``
(the label is the last number of the file name):

- ``keras_cnn.build(name, weights=FILE)``: the file by path;
- ``keras_cnn.build(name, weights="akamaster")``: the declared checkpoint, "downloaded" from the folder through
  ``KERAS_CNN_WEIGHTS_MIRROR`` into an empty cache (the same sha256 check as a download from GitHub);
- ``keras-cnn predict`` on the model saved as ``.keras``: its class names and its 32x32 preprocessing;

and the reference is the repository's own ``resnet.py`` model with the file's ``state_dict`` (``module.`` dropped),
on the same images normalized as its training script does. Recorded per net: top-1 of each, the largest
logit difference against the reference (absolute and relative to the largest logit), top-1 agreement, the
file's sha256 against the declared one and its ``best_prec1``. The files and images are measurement data
outside the repository (never copied in; REAL is the folder that holds them):

    python benchmarks/cifar_resnets_real.py REAL --json benchmarks/results/cifar_resnets_real.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np


def reference_module(path: Path):
    """The repository's ``resnet.py``, imported from its file."""
    spec = importlib.util.spec_from_file_location("akamaster_resnet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def labelled_images(folder: Path):
    """``(files, [N, 32, 32, 3] float32 in [0, 1], labels)`` of the PNGs, label = the file name's last number."""
    from PIL import Image

    files = sorted(folder.glob("*.png"))
    images = np.stack([np.asarray(Image.open(f).convert("RGB"), "float32") / 255.0 for f in files])
    labels = np.array([int(f.stem.rsplit("_", 1)[1]) for f in files])
    return files, images, labels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real", help="the folder holding cifar10_resnets/ and cifar10_test_20/")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args(argv)
    real = Path(args.real)
    nets, photos = real / "cifar10_resnets", real / "cifar10_test_20"

    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import torch

    import keras_cnn
    from keras_cnn.training.evaluate import predict
    from keras_cnn.weights import class_names
    from keras_cnn.weights.download import MIRROR_VARIABLE, sha256_of

    torch.set_num_threads(1)
    reference = reference_module(nets / "resnet.py")
    files, images, labels = labelled_images(photos)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KERAS_HOME"] = str(Path(tmp) / "keras_home")  # an empty cache: the mirror is really read
        os.environ[MIRROR_VARIABLE] = nets.resolve().as_uri()
        for file in sorted(nets.glob("resnet*.th"), key=lambda f: int(f.name[6:].split("-")[0])):
            name = file.name.split("-")[0]
            started = time.perf_counter()
            declared = keras_cnn.get_spec(name).checkpoints[0]
            by_path = keras_cnn.build(name, weights=str(file), classifier_activation=None)
            by_source = keras_cnn.build(name, weights="akamaster", classifier_activation=None)
            ours = np.asarray(by_path(images, training=False))
            ours_source = np.asarray(by_source(images, training=False))

            model = getattr(reference, name)().eval()
            model.load_state_dict(read_state_dict_torch(torch, file), strict=True)
            normalization = by_path.get_layer("checkpoint_normalization")
            normalized = (images - np.asarray(normalization.mean, "float32")) / np.asarray(normalization.std, "float32")
            with torch.no_grad():
                theirs = model(torch.from_numpy(np.ascontiguousarray(normalized.transpose(0, 3, 1, 2)))).numpy()

            saved = Path(tmp) / f"{name}.keras"
            keras_cnn.build(name, weights="akamaster").save(saved)
            predicted = [top[0]["class"] for top in predict(saved, files, top=1)]
            names = class_names("cifar10")
            diff = float(np.abs(ours - theirs).max())
            scale = float(np.abs(theirs).max())
            row = {
                "net": name, "file": file.name, "images": len(files),
                "correct_keras_by_path": int((ours.argmax(-1) == labels).sum()),
                "correct_keras_akamaster_source": int((ours_source.argmax(-1) == labels).sum()),
                "correct_keras_cnn_predict": int(sum(p == names[t] for p, t in zip(predicted, labels))),
                "correct_reference": int((theirs.argmax(-1) == labels).sum()),
                "top1_agreement": float(np.mean(ours.argmax(-1) == theirs.argmax(-1))),
                "max_abs_logit_diff": diff, "max_abs_logit": scale, "max_relative_diff": diff / scale,
                "source_equals_path": bool(np.array_equal(ours, ours_source)),
                "sha256": sha256_of(file), "declared_sha256": declared.sha256,
                "sha256_full_match": sha256_of(file) == declared.sha256,
                "best_prec1": float(torch.load(str(file), map_location="cpu", weights_only=True)["best_prec1"]),
                "reported_top1": declared.top1,
                "params": int(sum(int(np.prod(w.shape)) for w in by_path.trainable_weights)),
                "seconds": round(time.perf_counter() - started, 1),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    record = {"rows": rows, "machine": platform.machine(), "python": platform.python_version(),
              "torch": torch.__version__, "keras_cnn": keras_cnn.__version__,
              "date": time.strftime("%Y-%m-%d")}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 0


def read_state_dict_torch(torch, file):
    """The file as the repository's ``trainer.py`` reads it (a DataParallel model's keys), for its own model."""
    state = torch.load(str(file), map_location="cpu", weights_only=True)["state_dict"]
    return {key.removeprefix("module."): value for key, value in state.items()}


if __name__ == "__main__":
    sys.exit(main())
