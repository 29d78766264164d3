"""What a finished run leaves behind: top-1/top-5, the loss/accuracy curves and the confusion
matrix as PNG files, read from the run's ``history.csv``.

Example:
    >>> import numpy as np
    >>> from keras_cnn.training.report import top_k_accuracy
    >>> top_k_accuracy(np.eye(3), np.array([0, 1, 2]), k=1)
    1.0
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def top_k_accuracy(probabilities, labels, k=5) -> float:
    """Share of rows whose label is among the ``k`` highest scores."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    k = min(k, probabilities.shape[-1])
    top = np.argsort(-probabilities, axis=-1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=-1)))


def cross_entropy(probabilities, labels) -> float:
    """Mean negative log-likelihood of the labels."""
    picked = np.asarray(probabilities, "float64")[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def confusion_matrix(labels, predictions, num_classes) -> np.ndarray:
    """``[true, predicted]`` counts."""
    matrix = np.zeros((num_classes, num_classes), "int64")
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def read_history(path) -> dict[str, list[float]]:
    """``history.csv`` (Keras' CSVLogger, appended across resumes) as ``{column: values}``, one
    value per epoch; an epoch logged twice keeps its last row."""
    path = Path(path)
    if not path.exists():
        return {}
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("epoch") not in (None, "", "epoch"):
                rows[int(row["epoch"])] = row
    columns = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key is None:  # more values than header names: a column added by a resumed run
                continue
            columns.setdefault(key, []).append(float(value) if value not in ("", None) else float("nan"))
    return columns


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: dict, path, title=""):
    """Loss and accuracy per epoch, training and validation, in one PNG."""
    plt = _pyplot()
    epochs = [int(e) + 1 for e in history.get("epoch", [])]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, kind in zip(axes, ("loss", "accuracy")):
        for key in sorted(history):
            if key.endswith(kind) and "top5" not in key and not key.startswith("aux"):
                axis.plot(epochs, history[key], marker="o", label=key)
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.set_xlabel("epoch")
        axis.set_ylabel(kind)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion_matrix(matrix, class_names, path, title=""):
    """The confusion matrix as a PNG with counts in the cells."""
    plt = _pyplot()
    n = len(matrix)
    size = max(4.0, 0.5 * n + 2)
    fig, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    names = list(class_names) if class_names and len(class_names) == n else [str(i) for i in range(n)]
    axis.set_xticks(range(n), names, rotation=90 if n > 10 else 45, ha="right")
    axis.set_yticks(range(n), names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if n <= 30:
        threshold = matrix.max() / 2 if matrix.size else 0
        for i in range(n):
            for j in range(n):
                axis.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8,
                          color="white" if matrix[i, j] > threshold else "black")
    axis.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
