"""Multi-process data-parallel training on 127.0.0.1, through ``keras-cnn train`` as the README runs it.

Two processes, one CPU device each, JAX backend, with the cluster flags: both exit 0 with equal
final weights (``weights_sha256``), one run folder is written (by process 0), the loss of every
epoch equals that of one process over two logical devices (``JAX_NUM_CPU_DEVICES=2``) with the same
seed and global batch, ``--resume`` continues the group's run, and killing one process makes the
other exit non-zero within ``--cluster-timeout``.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("jax")
pytestmark = pytest.mark.slow

# XLA's LLVM back end at -O0: compiling ResNet-20's steps costs more than running these few
ENV = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
       "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()}
# With translation and MixUp: every draw is a function of (seed, epoch, step), so each process's pipeline
# gives the same batches (issue 34)
TRAIN = [sys.executable, "-m", "keras_cnn.cli", "train", "resnet20", "--dataset", "digits", "--strategy",
         "data_parallel", "--limit", "256", "--batch-size", "32", "--mixup", "0.2", "--verbose", "0"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_group(folder, epochs, *extra, timeout=120):
    port = free_port()
    return [subprocess.Popen([*TRAIN, "--epochs", str(epochs), "--output", "run", "--coordinator", f"127.0.0.1:{port}",
                              "--num-processes", "2", "--process-id", str(i), "--cluster-timeout", str(timeout),
                              *extra], cwd=folder, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in (0, 1)]


def finish(processes, timeout=600):
    results = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        results.append((process.returncode, out, err))
    return results


def summary_of(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def losses(path):
    with open(path) as f:
        return {int(row["epoch"]): float(row["loss"]) for row in csv.DictReader(f)}


def rows(path):
    """history.csv's rows without the wall-time column."""
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in csv.DictReader(f)]


def test_two_processes_train_like_one_process_over_two_devices_and_resume_exactly(tmp_path):
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight_dir.mkdir(), killed_dir.mkdir()
    group = finish(start_group(straight_dir, 3))
    for returncode, _, err in group:
        assert returncode == 0, err[-3000:]
    summaries = [summary_of(out) for _, out, _ in group]
    assert [s["process_id"] for s in summaries] == [0, 1] and summaries[0]["devices"] == 2
    assert summaries[0]["weights_sha256"] == summaries[1]["weights_sha256"]
    assert summaries[0]["test_top1"] == summaries[1]["test_top1"]
    assert sorted(p.name for p in straight_dir.iterdir()) == ["run"]  # one run folder, process 0's
    assert {"config.json", "history.csv", "summary.json", "best.keras", "last.keras"} <= {
        p.name for p in (straight_dir / "run").iterdir()}

    single = subprocess.run([*TRAIN, "--epochs", "3", "--output", "single"], cwd=tmp_path,
                            env={**ENV, "JAX_NUM_CPU_DEVICES": "2"}, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    assert summary_of(single.stdout)["devices"] == 2
    group_losses = losses(straight_dir / "run" / "history.csv")
    single_losses = losses(tmp_path / "single" / "history.csv")
    assert sorted(group_losses) == sorted(single_losses) == [0, 1, 2]
    for epoch, loss in single_losses.items():  # the same batches; the sums over devices may round differently
        assert abs(group_losses[epoch] - loss) <= 1e-4, (epoch, group_losses, single_losses)

    # both processes killed inside epoch 2, then the group resumed from process 0's backup: the same run
    killed = start_group(killed_dir, 3)
    history, deadline = killed_dir / "run" / "history.csv", time.time() + 300
    while not (history.exists() and len(history.read_text().splitlines()) >= 2):  # epoch 1 (of 3) has finished
        assert all(p.poll() is None for p in killed) and time.time() < deadline, killed[0].stderr.read()[-3000:]
        time.sleep(0.2)
    time.sleep(1.0)
    for process in killed:
        process.kill()
        process.wait()
    finished = len(history.read_text().splitlines()) - 1
    resumed = finish(start_group(killed_dir, 3, "--resume"))
    for returncode, _, err in resumed:
        assert returncode == 0, err[-3000:]
    summary = summary_of(resumed[0][1])
    assert summary["resumed"] and summary["resumed_from_epoch"] <= finished, (summary, finished)
    assert summary["weights_sha256"] == summary_of(resumed[1][1])["weights_sha256"] == summaries[0]["weights_sha256"]
    assert rows(killed_dir / "run" / "history.csv") == rows(straight_dir / "run" / "history.csv")


def test_a_killed_process_makes_the_other_exit_within_the_timeout(tmp_path):
    chief, other = start_group(tmp_path, 50, timeout=30)
    history = tmp_path / "run" / "history.csv"
    deadline = time.time() + 300
    while not (history.exists() and len(history.read_text().splitlines()) >= 2):  # an epoch has finished
        assert chief.poll() is None and time.time() < deadline, chief.stderr.read()[-3000:]
        time.sleep(0.5)
    other.send_signal(signal.SIGKILL)
    other.wait()
    killed_at = time.time()
    try:
        chief.wait(timeout=150)
    except subprocess.TimeoutExpired:
        chief.kill()
        pytest.fail("process 0 still waits 150 s after process 1 was killed")
    err = chief.stderr.read()
    assert chief.returncode != 0
    assert time.time() - killed_at < 150
    assert "keras-cnn: error: no training step finished" in err or "heartbeat" in err.lower() or \
        "distributed" in err.lower(), err[-3000:]
