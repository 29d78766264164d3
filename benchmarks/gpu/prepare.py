"""Fill ``.gpu/`` (ignored by git) with what the GPU check carries to the device machine.

The lent machine has Python 3.12, JAX and torch with CUDA, NumPy, scikit-learn, h5py, rich,
absl-py, ml-dtypes and packaging, but no Keras and no network. This writes:

- ``.gpu/*.whl``: Keras and the two of its requirements that machine lacks (namex, optree), pinned,
  for CPython 3.12 on manylinux x86-64 (``pip download``; needs PyPI here);
- ``.gpu/fashion_mnist.npz``: Fashion-MNIST's 70,000 images and labels as uint8 arrays (compressed,
  about 30 MB), read from the IDX files ``keras_cnn.data`` finds (Debian's ``dataset-fashion-mnist``
  or ``--data-dir``).

    python benchmarks/gpu/prepare.py            # then see benchmarks/gpu/README.md for the device call
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Pinned: the Keras this project is tested with, and the versions of its pure requirements it resolved to.
WHEELS = ("keras==3.15.1", "namex==0.1.0", "optree==0.20.0")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")


def download_wheels(folder: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.12", "--implementation", "cp", "-d", str(folder)]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    subprocess.run(command + list(WHEELS), check=True)


def write_fashion_mnist(path: Path, data_dir=None) -> None:
    import numpy as np

    from keras_cnn.data import load_arrays

    train = load_arrays("fashion_mnist", "train", data_dir)
    test = load_arrays("fashion_mnist", "test", data_dir)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, x_train=train.images[..., 0], y_train=train.labels.astype("uint8"),
                        x_test=test.images[..., 0], y_test=test.labels.astype("uint8"))
    tmp.replace(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, default=ROOT / ".gpu")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX files (default: Debian's)")
    parser.add_argument("--no-wheels", action="store_true")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    if not args.no_wheels:
        download_wheels(args.folder)
    write_fashion_mnist(args.folder / "fashion_mnist.npz", args.data_dir)
    for file in sorted(args.folder.iterdir()):
        print(f"{file.stat().st_size / 2**20:8.1f} MiB  {file.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
