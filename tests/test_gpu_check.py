"""The GPU check (benchmarks/gpu/run.py, issue 35) works before a GPU is lent: its ``--dry-run`` runs every
part on the CPU with the JAX backend, in a fresh virtual environment without TensorFlow, as on the GPU
machine (which has JAX and torch but no TensorFlow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: keras_cnn's requirements that ``import keras_cnn`` and the check use, without TensorFlow.
NO_TENSORFLOW = [f"keras=={keras.__version__}", "jax[cpu]", "scikit-learn", "pillow", "matplotlib"]


def test_gpu_check_dry_run_without_tensorflow(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", *NO_TENSORFLOW], capture_output=True,
                             text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    probe = subprocess.run([python, "-c", "import tensorflow"], capture_output=True, text=True, timeout=120)
    assert probe.returncode != 0, "the environment must not have TensorFlow"

    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OUT": str(out)}
    env.pop("KERAS_BACKEND", None)
    proc = subprocess.run([python, str(ROOT / "benchmarks" / "gpu" / "run.py"), "--dry-run", "--budget-s", "900"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    log = (out / "gpu_check.log").read_text() if (out / "gpu_check.log").exists() else ""
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}\n{log[-4000:]}"
    report = json.loads((out / "gpu_check.json").read_text())
    jax = report["backends"]["jax"]
    assert jax["exit_status"] == 0 and not jax["errors"] and not jax["skipped"], jax
    assert jax["tensorflow_imported"] is False and jax["precision"] == "mixed_bfloat16"
    assert len(jax["families"]) == 3 and all(row["ok"] for row in jax["families"]), jax["families"]
    assert all(row["bfloat16_layers"] > 0.5 and row["loss_last"] < row["loss_first"] for row in jax["families"])
    (speed,) = jax["speed"]
    assert speed["model"] == "resnet50" and speed["ours_images_per_s"] > 0 and speed["keras_images_per_s"] > 0
    assert jax["mfu"]["macs"] > 0 and jax["mfu"]["mfu"] is None  # no bf16 peak for a CPU
    (fashion,) = jax["fashion_mnist"]
    assert fashion["model"] == "lenet5" and 0.0 <= fashion["test_top1"] <= 1.0 and fashion["train_seconds"] > 0
