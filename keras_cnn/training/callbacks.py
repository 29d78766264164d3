"""Callbacks of the training recipe: atomic ``.keras`` checkpoints and epoch wall times.

Keras' ``ModelCheckpoint`` writes straight to the target file, so a run killed while it writes
leaves a truncated ``best.keras``. :class:`AtomicCheckpoint` writes to a temporary name in the
same folder and renames it over the target, so the file on disk is always a complete model.

Example:
    >>> from keras_cnn.training.callbacks import AtomicCheckpoint
    >>> best = AtomicCheckpoint("runs/x/best.keras", monitor="val_accuracy", mode="max")
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np

from keras_cnn.atomic import atomic_path, write_text
from keras_cnn.training.logits import saving_probabilities


class EpochTimer(keras.callbacks.Callback):
    """Add ``epoch_seconds`` (wall time of the epoch, validation included) to the epoch's logs.

    Put it before ``CSVLogger``: ``history.csv`` then holds every epoch's time across resumes,
    and a resumed run's total training time is the sum of that column.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and hasattr(self, "_started"):
            logs["epoch_seconds"] = round(time.perf_counter() - self._started, 2)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the model at each epoch end (``best_only``: only when ``monitor`` improves).

    The best value seen is read back from ``state`` on resume, so a resumed run does not
    overwrite a better ``best.keras`` with a worse one.
    """

    def __init__(self, path, *, monitor="val_loss", mode="min", best_only=False, best_value=None):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', received {mode!r}")
        self.path = Path(path)
        self.monitor, self.mode, self.best_only = monitor, mode, best_only
        self.best = best_value if best_value is not None else (math.inf if mode == "min" else -math.inf)

    def _improved(self, value):
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.best_only:
            value = logs.get(self.monitor)
            if value is None or not math.isfinite(value) or not self._improved(value):
                return
            self.best = float(value)
        save_atomically(self.model, self.path)


def save_atomically(model, path):
    """``model.save(path)`` through a temporary file and a rename, always with the softmax outputs."""
    with atomic_path(path) as tmp, saving_probabilities(model):  # a checkpoint taken inside fitting_on_logits
        model.save(tmp)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' ``BackupAndRestore`` with a backup that a kill at any moment leaves whole.

    Keras writes ``latest.weights.h5`` (weights and optimizer state: hundreds of MB for a big net) in
    place, then ``training_metadata.json`` (the epoch): a run killed while the weights were written
    could not resume, and one killed between the two files resumed the wrong epoch. Here the weights
    and the epoch they belong to (an attribute of the file) are written under a temporary name and
    renamed over the backup in one step; the JSON is still written for Keras' own reader. A temporary
    file left by a kill is removed at the next start.
    """

    EPOCH_ATTRIBUTE = "keras_cnn_backup_epoch"

    def on_train_begin(self, logs=None):
        for stale in Path(self.backup_dir).glob(".latest.*.tmp*"):
            stale.unlink(missing_ok=True)
        super().on_train_begin(logs)

    def _save_model(self):
        import h5py

        with atomic_path(self._weights_path) as tmp:
            self.model.save_weights(str(tmp), overwrite=True)
            with h5py.File(tmp, "a") as file:
                file.attrs[self.EPOCH_ATTRIBUTE] = int(self._current_epoch)
        write_text(self._training_metadata_path,
                   json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))

    def _load_model(self):
        super()._load_model()
        if Path(self._weights_path).exists():
            self.model._initial_epoch = backup_epoch(Path(self.backup_dir))


def backup_epoch(folder: Path) -> int:
    """The epochs a backup folder's weights hold: the attribute :class:`AtomicBackupAndRestore` writes into
    them, else (a backup written by Keras itself) its ``training_metadata.json``; 0 without a backup."""
    import h5py

    weights, metadata = Path(folder) / "latest.weights.h5", Path(folder) / "training_metadata.json"
    if weights.exists():
        with h5py.File(weights, "r") as file:
            if AtomicBackupAndRestore.EPOCH_ATTRIBUTE in file.attrs:
                return int(file.attrs[AtomicBackupAndRestore.EPOCH_ATTRIBUTE])
    return int(json.loads(metadata.read_text())["epoch"]) if metadata.exists() else 0


class EpochSeeds(keras.callbacks.Callback):
    """Make every random draw of an epoch a function of ``(seed, epoch, step)``, so that a run resumed at
    an epoch boundary replays exactly what the uninterrupted run drew.

    At the start of each epoch it sets the training pipeline's :class:`~keras_cnn.data.EpochCounter`
    (order, augmentation, MixUp/CutMix) and the state of every seed generator inside the model
    (dropout, drop-path, stochastic depth: Keras ``SeedGenerator``) to values derived from
    ``(seed, epoch)``; within the epoch they advance one step at a time as usual. Put it first:
    the pipeline's pass for the epoch starts after ``on_epoch_begin``.
    """

    def __init__(self, seed: int, counter=None):
        super().__init__()
        self.seed, self.counter = int(seed), counter

    def on_epoch_begin(self, epoch, logs=None):
        if self.counter is not None:
            self.counter.set(epoch)
        for index, generator in enumerate(seed_generators(self.model)):
            generator.state.assign(np.asarray([generator_seed(self.seed, epoch, index), 0],
                                              dtype=generator.state.dtype))


def seed_generators(model) -> list:
    """Every Keras ``SeedGenerator`` of ``model``'s layers, in layer order."""
    found, seen = [], set()
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for generator in getattr(layer, "_seed_generators", []):
            if id(generator) not in seen:
                seen.add(id(generator))
                found.append(generator)
    return found


def generator_seed(seed: int, epoch: int, index: int) -> int:
    """A 31-bit seed for seed generator ``index`` in ``epoch`` of a run seeded ``seed`` (fits every backend's
    seed dtype)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0]) & 0x7FFFFFFF


class UnfreezeBackbone(keras.callbacks.Callback):
    """Fine-tuning with a frozen backbone for the first ``epochs`` epochs, then everything trains.

    ``layers`` (the backbone: every layer outside the checkpoint's classifier) are frozen before
    the first epoch, BatchNorm included (a frozen Keras BatchNorm also runs in inference mode, so
    the checkpoint's statistics are kept). At the start of epoch ``epochs`` they are unfrozen and
    the train step is rebuilt. The optimizer was built for every variable before the freeze, so it
    has state for all of them; a resumed run past the freeze starts unfrozen.
    """

    def __init__(self, layers, epochs: int):
        super().__init__()
        self.backbone, self.epochs = list(layers), int(epochs)

    def _set(self, trainable: bool):
        for layer in self.backbone:
            layer.trainable = trainable
        self.model.make_train_function(force=True)

    def on_train_begin(self, logs=None):
        self._frozen = False

    def on_epoch_begin(self, epoch, logs=None):
        frozen = epoch < self.epochs
        if frozen != self._frozen:
            self._set(not frozen)
            self._frozen = frozen


class ProgressWatchdog(keras.callbacks.Callback):
    """End the process when no training or validation step has finished for ``timeout`` seconds.

    In a multi-process run every step is a collective: when one process dies, the others wait in
    the next all-reduce, and gloo and XLA's collectives wait without end. The watchdog prints one
    line, ``keras-cnn: error: ...``, and exits with status 3 (``os._exit``: the waiting thread cannot
    be interrupted). The first step gets ``timeout`` plus the time to compile it.
    """

    EXIT_CODE = 3

    def __init__(self, timeout: float, what: str = "a process of the group stopped", first_step_grace: float = 600):
        super().__init__()
        self.timeout, self.what, self.grace = float(timeout), what, float(first_step_grace)
        self._last = time.monotonic() + self.grace
        self._done = threading.Event()

    def _tick(self, *_args, **_kwargs):
        self._last = time.monotonic()

    on_train_batch_end = on_test_batch_end = on_epoch_end = _tick

    def on_train_begin(self, logs=None):
        self._last = time.monotonic() + self.grace
        threading.Thread(target=self._watch, daemon=True, name="keras-cnn-watchdog").start()

    def on_train_end(self, logs=None):
        self._done.set()

    def _watch(self):
        while not self._done.wait(1.0):
            idle = time.monotonic() - self._last
            if idle > self.timeout:
                print(f"keras-cnn: error: no training step finished for {idle:.0f} s (timeout {self.timeout:.0f} s): "
                      f"{self.what}", file=sys.stderr, flush=True)
                os._exit(self.EXIT_CODE)
