"""The fit recipe: :func:`train` runs a whole experiment into a run folder.

A run folder (default ``runs/<model>_<dataset>``) holds ``config.json`` (every resolved
setting), ``backup/`` (Keras' ``BackupAndRestore``: an interrupted run resumes from its last
finished epoch with ``resume=True``), ``best.keras`` and ``last.keras`` (written atomically),
``history.csv``, TensorBoard logs in ``logs/``, and at the end ``curves.png``,
``confusion_matrix.png`` and ``summary.json`` (test top-1/top-5, printed as one JSON line).

Example:
    >>> import keras_cnn
    >>> result = keras_cnn.train("lenet5", dataset="digits", epochs=2, output="runs/lenet5_digits")
    >>> result.summary["test_top1"] > 0.5
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from keras_cnn import data as data_lib
from keras_cnn.analysis.counting import count_trainable
from keras_cnn.atomic import write_text
from keras_cnn.layers.input_normalization import InputNormalization
from keras_cnn.models.inception import aux_loss_weights, aux_targets, inference_model
from keras_cnn.models.spec import Recipe
from keras_cnn.registry import build, get_spec, recipe_for
from keras_cnn.training import distribute
from keras_cnn.training.callbacks import (
    AtomicBackupAndRestore,
    AtomicCheckpoint,
    EpochSeeds,
    EpochTimer,
    ProgressWatchdog,
    UnfreezeBackbone,
    backup_epoch,
)
from keras_cnn.training.fine_tune import BACKBONE_LR_FACTOR, FREEZE_EPOCHS, fine_tune
from keras_cnn.training.logits import fitting_on_logits
from keras_cnn.training.report import (
    confusion_matrix,
    cross_entropy,
    plot_confusion_matrix,
    plot_curves,
    read_history,
    top_k_accuracy,
)
from keras_cnn.training.schedules import (  # noqa: F401  (public here too)
    OPTIMIZERS,
    SCHEDULES,
    STEP_DROPS,
    WarmupCosineDecay,
    WarmupStepDecay,
    learning_rate_schedule,
    make_optimizer,
)
from keras_cnn.weights import freezable_layers


def main_output(model) -> str | None:
    """Name of the class-probability output of a multi-output (auxiliary-head) model, else None."""
    names = list(getattr(model, "output_names", None) or [])
    return "predictions" if len(names) > 1 and "predictions" in names else None


def num_classes_of(model) -> int:
    """Width of the class-probability output."""
    head = main_output(model)
    index = list(model.output_names).index(head) if head else 0
    return int(model.outputs[index].shape[-1])


def compile_model(model, *, steps_per_epoch=None, epochs=1, optimizer="adamw", learning_rate=1e-3,
                  schedule="cosine", warmup_epochs=0, weight_decay=1e-4, label_smoothing=0.0, jit_compile="auto",
                  ema=0.0, fine_tune=None):
    """Compile for one-hot (possibly mixed) labels with top-1 and top-5 accuracy.

    Models with auxiliary heads (GoogLeNet, Inception-v3 with ``aux_logits=True``) get one loss per
    output, weighted 1 for ``predictions`` and 0.3 for each ``aux*`` head (GoogLeNet sec. 5), and
    their metrics on ``predictions`` only.
    """
    steps = steps_per_epoch * epochs if steps_per_epoch else None
    opt = make_optimizer(optimizer, learning_rate=learning_rate, steps=steps, schedule=schedule,
                         warmup_steps=(steps_per_epoch or 0) * warmup_epochs, weight_decay=weight_decay, ema=ema,
                         fine_tune=fine_tune)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    num_classes = num_classes_of(model)
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy"),
               keras.metrics.TopKCategoricalAccuracy(k=min(5, num_classes), name="top5_accuracy")]
    head = main_output(model)
    if head:
        model.compile(optimizer=opt, loss={n: loss for n in model.output_names},
                      loss_weights=aux_loss_weights(model), metrics={head: metrics}, jit_compile=jit_compile)
    else:
        model.compile(optimizer=opt, loss=loss, metrics=metrics, jit_compile=jit_compile)
    # Create the optimizer's slot variables now, eagerly (inside the caller's strategy scope).
    # Left to the first traced train step, creating them there doubles the tracing time
    # (MobileNet-v1 at 32x32: 25 s -> 13 s for the first epoch on 2 CPU cores).
    model.optimizer.build(model.trainable_variables)
    return model


def for_outputs(dataset, model):
    """``(image, label)`` -> ``(image, {output: label})`` for a model with auxiliary heads."""
    if not main_output(model):
        return dataset

    return aux_targets(dataset, model)


def compile_and_fit(model, train, *, validation=None, epochs=10, optimizer="adamw", learning_rate=1e-3,
                    warmup_epochs=1, weight_decay=1e-4, label_smoothing=0.0, callbacks=None, verbose="auto"):
    """Compile ``model`` and fit it on ``(image, integer label)`` pipelines (no run folder; see :func:`train`)."""
    num_classes = num_classes_of(model)
    steps_per_epoch = int(train.cardinality()) if int(train.cardinality()) > 0 else None
    compile_model(model, steps_per_epoch=steps_per_epoch, epochs=epochs, optimizer=optimizer,
                  learning_rate=learning_rate, warmup_epochs=warmup_epochs, weight_decay=weight_decay,
                  label_smoothing=label_smoothing)
    train = for_outputs(data_lib.mix_batches(train, num_classes), model)
    if validation is not None:
        validation = for_outputs(data_lib.mix_batches(validation, num_classes), model)
    with fitting_on_logits(model):
        return model.fit(train, validation_data=validation, epochs=epochs, callbacks=callbacks or [],
                         verbose=verbose)


# --------------------------------------------------------------------------- a whole run
@dataclasses.dataclass
class RunConfig:
    """Every setting of a run, resolved (saved as ``config.json`` in the run folder)."""

    model: str
    dataset: str = "digits"
    data_dir: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    epochs: int = 10
    batch_size: int = 64
    image_size: int | None = None
    data_size: int | None = None
    channels: int | None = None
    num_classes: int | None = None
    class_names: list = dataclasses.field(default_factory=list)
    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    warmup_epochs: int = 1
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    ema: float = 0.0
    resize: str = "bilinear"
    augment: bool = True
    translate: float = 0.1
    flip: bool = False
    mixup: float = 0.0
    cutmix: float = 0.0
    mixed_precision: str | None = None
    jit_compile: bool | str = "auto"
    strategy: str = "none"
    limit: int | None = None
    seed: int = 0
    deterministic: bool = True  # deterministic kernels where the backend has a switch (TensorFlow's op determinism)
    model_options: dict = dataclasses.field(default_factory=dict)
    weights: str | None = None  # a checkpoint to start from (keras_cnn.build's weights=)
    # Fine-tuning a checkpoint (keras_cnn.training.fine_tune; None: the recipe's value when weights load one)
    freeze_epochs: int | None = None  # epochs with the backbone frozen (only the new classifier trains)
    backbone_lr_factor: float | None = None  # the rate once the backbone is unfrozen: this times learning_rate
    train_batch_norm: bool | None = None  # False: the backbone's BatchNorm stays in inference mode, stats kept
    recipe: str = ""
    resumes: list = dataclasses.field(default_factory=list)  # settings changed at a resume: [{"at_epoch", "changed"}]


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, the per-epoch history, the summary, the folder."""

    model: keras.Model
    history: dict
    summary: dict
    run_dir: Path


SETTINGS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in ("model", "class_names",
                                                                                   "recipe", "resumes"))
#: Settings a resumed run may change (each change is recorded in ``config.json``'s ``resumes``): a longer run.
RESUMABLE = ("epochs",)


def train(model_or_name, dataset=None, *, output=None, resume=False, callbacks=None, verbose="auto",
          cluster=None, **settings) -> TrainResult:
    """Train a registered model (or a built ``keras.Model``) on ``dataset`` into a run folder.

    ``settings`` are the fields of :class:`RunConfig` (``epochs``, ``batch_size``, ``image_size``,
    ``learning_rate``, ``optimizer`` sgd|adamw|adam, ``schedule`` cosine|step|constant,
    ``warmup_epochs``, ``label_smoothing``, ``weight_decay``, ``ema`` (weight-average momentum), ``augment``,
    ``mixup``, ``cutmix``,
    ``mixed_precision`` float16|bfloat16|auto, ``jit_compile``, ``strategy`` none|mirrored|data_parallel,
    ``limit`` (first N training images), ``model_options`` for ``build``, ``weights`` (a checkpoint
    to fine-tune: ``"imagenet"``, ``"torchvision"``, ``"timm"``, a file; the classifier starts fresh when the
    classes differ), ``freeze_epochs`` (with weights: train only the classifier that long), ...); what is not given
    comes from the model's recipe (``keras_cnn.get_spec(name).recipe``, declared in its family's
    ``models/<family>.py``) and the data set. ``dataset`` is a :mod:`keras_cnn.data` source
    (default ``"digits"``). ``resume=True`` continues the run in ``output`` from its last finished epoch
    with its saved settings: the model and ``dataset``, when given, must be the run's, and every setting
    given must equal the run's (one ``ValueError`` lists each difference, ``old -> new``), except
    ``epochs`` (:data:`RESUMABLE`: a longer run), whose change is recorded in ``config.json``'s and the
    summary's ``resumes``; ``config.json`` is rewritten only then.

    ``cluster`` (a :class:`~keras_cnn.training.distribute.Cluster`, or None: read from the
    ``KERAS_CNN_*`` / SLURM variables when they name one) makes this process one of a multi-process
    ``strategy="data_parallel"`` run on the JAX backend: every process runs the same call, only
    process 0 writes ``output`` (which the others read to resume), and every process returns the
    same trained model (its summary has ``weights_sha256`` to compare them).
    """
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ValueError(f"unknown training setting(s) {unknown}; allowed: {', '.join(SETTINGS)}")
    cluster = cluster or distribute.cluster_from()
    chief = cluster is None or cluster.is_chief
    given_model = model_or_name if isinstance(model_or_name, keras.Model) else None
    name = given_model.name if given_model is not None else str(model_or_name)
    run_dir = Path(output or Path("runs") / f"{name}_{dataset or 'digits'}")
    config, write_config = _resolve_config(name, dataset, run_dir, resume, given_model, settings, writer=chief)
    check_settings(config)
    if cluster is not None:
        if config.strategy != "data_parallel":
            raise ValueError(f"a multi-process run ({cluster.num_processes} processes) needs strategy "
                             f"'data_parallel', received {config.strategy!r}")
        distribute.initialize_cluster(cluster)
    started = time.time()
    arrays = load_splits(config)
    keras.utils.set_random_seed(config.seed)
    deterministic_ops(config.deterministic)
    new_folder = not run_dir.exists()
    resumed_from = _resume_point(run_dir, writer=chief) if resume else None
    epoch = data_lib.EpochCounter()  # outside the strategy's scope: the pipeline's, not a model variable
    with distribute.precision(distribute.precision_policy(config.mixed_precision)), \
            distribute.strategy_scope(config.strategy):
        model = given_model or build_from_config(config)
        train_ds, test_ds, steps_per_epoch = make_pipelines(config, arrays, model, epoch)
        freezing = prepare_fine_tuning(config, model)
        recipe = {k: getattr(config, k) for k in ("optimizer", "learning_rate", "schedule", "warmup_epochs",
                                                  "weight_decay", "label_smoothing", "jit_compile", "ema")}
        compile_model(model, steps_per_epoch=steps_per_epoch, epochs=config.epochs,
                      fine_tune=fine_tune_steps(config, steps_per_epoch), **recipe)
        # The run folder appears only once everything above has worked, so a bad setting leaves nothing.
        if chief and write_config:  # a resumed run's config.json changes only to record a longer run
            write_text(run_dir / "config.json", json.dumps(dataclasses.asdict(config), indent=2) + "\n")
        group = [EpochSeeds(config.seed, epoch)] + ([] if cluster is None else [ProgressWatchdog(
            cluster.timeout, f"a process of the {cluster.num_processes}-process group (coordinator "
                             f"{cluster.coordinator}) stopped or cannot be reached")])
        if cluster is None:
            run_callbacks = _callbacks(run_dir, model, resume, ema=config.ema)
        elif chief:  # its files are written outside the distribution, where the others have no part
            run_callbacks = [c if isinstance(c, (EpochTimer, keras.callbacks.SwapEMAWeights))
                             else distribute.ProcessLocal(c)
                             for c in _callbacks(run_dir, model, resume, ema=config.ema)]
        else:
            run_callbacks = _follower_callbacks(run_dir, ema=config.ema)
        try:
            with fitting_on_logits(model):
                fitted = model.fit(train_ds, validation_data=test_ds, epochs=config.epochs, verbose=verbose,
                                   shuffle=False, callbacks=group + run_callbacks + freezing
                                   + list(callbacks or []))
        except BaseException:
            if chief and new_folder and not (run_dir / "history.csv").exists():
                shutil.rmtree(run_dir, ignore_errors=True)  # no epoch finished: nothing to resume
            raise
        if cluster is not None:  # the distributed model's outputs are sharded over the processes: each evaluates
            model = distribute.local_copy(model)  # its own copy, outside the distribution
            with distribute.no_distribution():
                summary = evaluate_model(model, arrays["test"], config, run_dir=run_dir if chief else None)
        else:
            summary = evaluate_model(model, arrays["test"], config, run_dir=run_dir)
    summary["resumed"] = resumed_from is not None
    summary["resumed_from_epoch"] = resumed_from  # epochs finished before this call (None: not resumed)
    if config.resumes:
        summary["resumes"] = config.resumes
    summary["seconds"] = round(time.time() - started, 1)  # this call: data, training, evaluation
    history = read_history(run_dir / "history.csv") if chief else dict(fitted.history)
    epoch_seconds = history.get("epoch_seconds", [])
    if len(epoch_seconds) == config.epochs and all(np.isfinite(epoch_seconds)):
        summary["train_seconds"] = round(float(sum(epoch_seconds)), 1)  # every epoch, across resumes
    summary["weights_sha256"] = weights_digest(model)
    if cluster is not None:
        summary.update(process_id=cluster.process_id, processes=cluster.num_processes)
        if not chief:
            summary["run_dir"] = str(run_dir)  # written by process 0
    if chief:
        write_text(run_dir / "summary.json", json.dumps(summary) + "\n")
    print(json.dumps(summary))
    return TrainResult(model, history, summary, run_dir)


def deterministic_ops(enabled: bool) -> None:
    """With ``enabled``, the backend's kernels give the same results run after run: TensorFlow's op
    determinism (``tf.config.experimental.enable_op_determinism``: deterministic kernels, and an error
    for an op that has none), torch's ``use_deterministic_algorithms``. JAX's XLA is deterministic on the
    CPU as it is. The switch holds for the rest of the process (TensorFlow has no way back)."""
    if not enabled:
        return
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)


def weights_digest(model) -> str:
    """sha256 of every weight's bytes in order: equal digests, equal models (processes of one run agree)."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight), dtype="float32").tobytes())
    return digest.hexdigest()


def _resolve_config(name, dataset, run_dir, resume, given_model, settings, writer=True) -> tuple[RunConfig, bool]:
    """``(config, write)``: the run's settings, and whether ``config.json`` is to be written (a new run,
    or a resumed one whose ``epochs`` changed)."""
    saved = run_dir / "config.json"
    if resume:
        if not saved.exists():
            raise ValueError(f"resume: {run_dir} holds no run (no config.json); start it without resume first")
        return _resumed_config(saved, name, dataset, given_model, settings)
    if saved.exists() and writer:  # (another process of a group reads it; process 0 may have written it already)
        raise ValueError(f"{run_dir} already holds a run; pass resume=True (--resume) to continue it, "
                         "or choose another output folder")
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"output {run_dir} is a file, not a folder")
    given = {k: v for k, v in settings.items() if v is not None}
    recipe = recipe_for(None if given_model is not None else name)
    if given_model is None:
        spec = get_spec(name)  # unknown names fail here, with the close matches
        name = spec.name
    if given_model is not None and given.get("strategy", "none") != "none":
        raise ValueError("a distribution strategy needs a registry name, so that the model is built inside "
                         f"the strategy's scope; received a built model {name!r}")
    config = RunConfig(model=name, dataset=dataset or "digits", recipe=recipe.why,
                       **{f.name: getattr(recipe, f.name) for f in dataclasses.fields(Recipe) if f.name != "why"})
    for key, value in given.items():
        setattr(config, key, value)
    if given_model is not None:
        shape = given_model.input_shape
        config.image_size, config.channels = int(shape[1]), int(shape[3])
    if config.weights:  # a checkpoint: the fine-tuning recipe fills in what was not given
        if config.freeze_epochs is None:  # a one-epoch run has no epoch to spare for the classifier alone
            config.freeze_epochs = min(FREEZE_EPOCHS, max(0, config.epochs - 1)) if isinstance(config.epochs, int) \
                else FREEZE_EPOCHS
        config.backbone_lr_factor = BACKBONE_LR_FACTOR if config.backbone_lr_factor is None \
            else config.backbone_lr_factor
        config.train_batch_norm = bool(config.train_batch_norm)
        config.recipe = (f"{config.recipe}; fine-tuning a checkpoint: the new classifier alone for "
                         f"{config.freeze_epochs} epoch(s) at learning_rate, then the whole net at "
                         f"{config.backbone_lr_factor} x learning_rate after a warm-up over 10% of its steps, "
                         f"BatchNorm {'trained' if config.train_batch_norm else 'in inference mode (statistics kept)'}")
    return config, True


def _resumed_config(saved: Path, name, dataset, given_model, settings) -> tuple[RunConfig, bool]:
    """``(config, changed)``: the run's stored config, checked against what the resuming call gave (None:
    not given), with the :data:`RESUMABLE` settings that changed applied and recorded in ``resumes``."""
    run_dir = saved.parent
    try:
        stored = json.loads(saved.read_text())
        known = {f.name for f in dataclasses.fields(RunConfig)}
        config = RunConfig(**{k: v for k, v in stored.items() if k in known})
    except (ValueError, TypeError) as error:
        raise ValueError(f"resume: {saved} is not a readable run config: {error}") from error
    requested = given_model.name if given_model is not None else get_spec(name).name
    if requested != config.model:
        raise ValueError(f"resume: {run_dir} is a run of {config.model!r}, received model {requested!r}; resume it "
                         f"with its own model, or train {requested!r} into another output folder")
    if dataset is not None and dataset != config.dataset:
        raise ValueError(f"resume: {run_dir} is a run on dataset {config.dataset!r}, received dataset {dataset!r}; "
                         "resume it without a dataset (or with its own), or train on another into another output "
                         "folder")
    differences, changed = [], {}
    for key, value in settings.items():
        old = getattr(config, key)
        if value is None or value == old:
            continue
        if key in RESUMABLE:
            changed[key] = [old, value]
        else:
            differences.append(f"{key}: {old!r} -> {value!r}")
    if differences:
        raise ValueError(f"resume: {run_dir} was trained with other settings ({', '.join(differences)}); a resumed "
                         f"run keeps its settings except {', '.join(RESUMABLE)}: resume without them, or start a new "
                         "run in another output folder")
    if changed:
        finished = len(read_history(run_dir / "history.csv").get("epoch", [])) if (
            run_dir / "history.csv").exists() else 0
        if isinstance(settings["epochs"], int) and settings["epochs"] < finished:
            raise ValueError(f"resume: epochs must be at least the {finished} epochs {run_dir} has finished, "
                             f"received {settings['epochs']!r}")
        for key, (_, value) in changed.items():
            setattr(config, key, value)
        config.resumes = [*config.resumes, {"at_epoch": finished, "changed": changed}]
    return config, bool(changed)


def check_settings(config: RunConfig) -> RunConfig:
    """Raise ``ValueError`` naming the first setting of ``config`` whose value cannot be trained with."""

    def number(key, low, high=math.inf, *, integer=False, low_open=False, high_open=False, optional=False):
        value = getattr(config, key)
        if value is None and optional:
            return
        kind = "an integer" if integer else "a number"
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        ok = ok and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        if not ok:
            bounds = f"{'(' if low_open else '['}{low}, {high}{')' if high_open or high == math.inf else ']'}"
            raise ValueError(f"{key} must be {kind} in {bounds}, received {value!r}")

    number("epochs", 1, integer=True)
    number("batch_size", 1, integer=True)
    number("image_size", 1, integer=True, optional=True)
    number("learning_rate", 0, low_open=True)
    number("warmup_epochs", 0, integer=True)
    if config.warmup_epochs > config.epochs:
        raise ValueError(f"warmup_epochs must be at most epochs ({config.epochs}: the warm-up is part of the run), "
                         f"received {config.warmup_epochs}")
    number("weight_decay", 0)
    number("label_smoothing", 0, 1, high_open=True)
    number("ema", 0, 1, high_open=True)
    number("mixup", 0)
    number("cutmix", 0)
    number("translate", 0, 1, high_open=True)
    number("limit", 1, integer=True, optional=True)
    number("seed", 0, integer=True)
    number("freeze_epochs", 0, integer=True, optional=True)
    number("backbone_lr_factor", 0, low_open=True, optional=True)
    for key in ("freeze_epochs", "backbone_lr_factor", "train_batch_norm"):
        if getattr(config, key) not in (None, 0) and not config.weights:
            raise ValueError(f"{key}={getattr(config, key)!r} needs weights (a checkpoint to fine-tune), "
                             "received weights=None")
    if config.deterministic not in (True, False):
        raise ValueError(f"deterministic must be True or False, received {config.deterministic!r}")
    if config.train_batch_norm not in (None, True, False):
        raise ValueError(f"train_batch_norm must be True or False, received {config.train_batch_norm!r}")
    if config.freeze_epochs and config.freeze_epochs >= config.epochs:
        raise ValueError(f"freeze_epochs must be below epochs ({config.epochs}: the backbone must train at least one "
                         f"epoch), received {config.freeze_epochs}")
    if config.weights is not None and not isinstance(config.weights, str):
        raise ValueError(f"weights must be a string (a source or a path), received {config.weights!r}")
    for key, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("strategy", distribute.STRATEGIES),
                         ("resize", data_lib.RESIZE_MODES)):
        if getattr(config, key) not in allowed:
            raise ValueError(f"{key} must be one of {list(allowed)}, received {getattr(config, key)!r}")
    distribute.precision_policy(config.mixed_precision)
    if not isinstance(config.model_options, dict):
        raise ValueError(f"model_options must be a dict of builder options, received {config.model_options!r}")
    return config


def load_splits(config: RunConfig) -> dict:
    """Train/test arrays; fills in image size, channels and classes the data set decides."""
    train = data_lib.load_arrays(config.dataset, config.train_split, config.data_dir)
    test = data_lib.load_arrays(config.dataset, config.test_split, config.data_dir)
    if config.limit:
        train = data_lib.Dataset((train.images[:config.limit], train.labels[:config.limit], train.class_names))
    classes = list(train.class_names) or [str(i) for i in range(int(max(train.labels.max(), test.labels.max())) + 1)]
    config.class_names = config.class_names or classes
    config.num_classes = config.num_classes or len(config.class_names)
    for part in (train, test):
        if part.labels.max() >= config.num_classes or part.labels.min() < 0:
            raise ValueError(f"{config.dataset}: labels from {part.labels.min()} to {part.labels.max()} do not fit "
                             f"num_classes={config.num_classes}")
    config.data_size = int(train.images.shape[1])
    if config.channels is None:
        config.channels = int(train.images.shape[-1])
    if config.image_size is None:  # the data's own size, raised to the smallest input the model takes

        config.image_size = max(int(train.images.shape[1]), get_spec(config.model).min_input_size)
    return {"train": train, "test": test}


def build_from_config(config: RunConfig):
    """The registered model the run trains, at the run's input size and classes, from its checkpoint
    ``config.weights`` when it has one. A resumed run is built from it too, since the checkpoint's
    normalization is part of the model (a layer without variables, which the backup does not hold), and
    then restores its own trained values. Trained on another data set than the checkpoint's, the model no
    longer records the checkpoint's (``keras-cnn predict`` of its ``.keras`` file, away from the run's
    ``config.json``, must not name a CIFAR-10 checkpoint's classes for a net fine-tuned on digits)."""
    model = build(config.model, num_classes=config.num_classes,
                  input_shape=(config.image_size, config.image_size, config.channels),
                  weights=config.weights, **config.model_options)
    for layer in model.layers:
        if isinstance(layer, InputNormalization) and layer.dataset and layer.dataset != config.dataset:
            layer.dataset = ""
    return model


def prepare_fine_tuning(config: RunConfig, model) -> list:
    """For a run from a checkpoint: the backbone's BatchNorm layers in inference mode (unless
    ``train_batch_norm``), before the optimizer is built; returns the :class:`UnfreezeBackbone` callback of
    a run with ``freeze_epochs`` (which leaves those BatchNorm layers frozen), else nothing. A run without
    weights, or one saved before the recipe (its fields None), trains as it did."""
    if not config.weights:
        return []
    backbone = freezable_layers(model, get_spec(config.model))
    frozen = fine_tune(model, backbone) if config.train_batch_norm is False else []
    if not config.freeze_epochs:
        return []
    return [UnfreezeBackbone([layer for layer in backbone if layer not in frozen], config.freeze_epochs)]


def fine_tune_steps(config: RunConfig, steps_per_epoch) -> tuple[int, float] | None:
    """``(head_steps, factor)`` of the learning-rate schedule of a checkpoint's fine-tuning, else None."""
    if not config.weights or config.backbone_lr_factor is None:
        return None
    return (config.freeze_epochs or 0) * steps_per_epoch, config.backbone_lr_factor


def make_pipelines(config, arrays, model, epoch=None):
    """``(train, test, steps_per_epoch)``: batched one-hot pipelines of ``arrays["train"]`` (shuffled,
    augmented, mixed: every draw a function of ``(config.seed, epoch, step)``, the epoch from ``epoch``, an
    :class:`~keras_cnn.data.EpochCounter`) and ``arrays["test"]``, split evenly over the strategy's devices."""
    replicas = distribute.replicas(config.strategy)
    if config.batch_size % replicas:
        raise ValueError(f"batch_size {config.batch_size} must be a multiple of the {replicas} devices of "
                         f"strategy {config.strategy!r}")
    drop = replicas > 1
    augment = (data_lib.Augmentation(translate=config.translate, flip=config.flip, mixup=config.mixup,
                                     cutmix=config.cutmix) if config.augment else
               data_lib.Augmentation(translate=0.0, mixup=config.mixup, cutmix=config.cutmix))
    common = {"num_classes": config.num_classes, "image_size": config.image_size, "channels": config.channels,
              "batch_size": config.batch_size, "one_hot": True, "drop_remainder": drop, "resize": config.resize}
    train = data_lib.from_arrays(*arrays["train"][:2], seed=config.seed, augment=augment, epoch=epoch, **common)
    test = data_lib.from_arrays(*arrays["test"][:2], shuffle=False, **common)
    steps = len(arrays["train"].labels) // config.batch_size if drop else \
        math.ceil(len(arrays["train"].labels) / config.batch_size)
    return for_outputs(train, model), for_outputs(test, model), steps


def _callbacks(run_dir: Path, model, resume, ema=0.0):
    head = main_output(model)
    monitor = f"val_{head}_accuracy" if head else "val_accuracy"
    history = read_history(run_dir / "history.csv") if resume else {}
    best_so_far = max(history[monitor]) if history.get(monitor) else None
    # The backup comes first: it saves the training weights (and the average in the optimizer);
    # with a weight average, validation and the checkpoints after it see the averaged weights.
    averaging = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else []
    # history.csv's row comes before the backup: a run killed between the two has one row more than its
    # backup, which the resume removes (_resume_point); the other way round, the row would be lost.
    return [
        EpochTimer(),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        AtomicBackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False),
        *averaging,
        AtomicCheckpoint(run_dir / "last.keras"),
        AtomicCheckpoint(run_dir / "best.keras", monitor=monitor, mode="max", best_only=True,
                         best_value=best_so_far),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False, profile_batch=0),
    ]


def _resume_point(run_dir: Path, writer=True) -> int:
    """The epochs a run's backup holds (:func:`~keras_cnn.training.callbacks.backup_epoch`). Rows of
    ``history.csv`` past it (an epoch logged, then killed before its backup) are removed (by ``writer``):
    that epoch runs again."""
    finished = backup_epoch(run_dir / "backup")
    history = run_dir / "history.csv"
    if writer and history.exists():
        lines = history.read_text().splitlines(keepends=True)
        if len(lines) > finished + 1:  # the header and one row per finished epoch
            write_text(history, "".join(lines[:finished + 1]))
    return finished


class _RestoreOnly(AtomicBackupAndRestore):
    """``BackupAndRestore`` that restores process 0's backup and never writes (the other processes of a group)."""

    def _save_model(self):
        pass

    def on_train_end(self, logs=None):
        pass


def _follower_callbacks(run_dir: Path, ema=0.0):
    """What the processes other than 0 run: the same restore and weight average, no files."""
    averaging = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else []
    return [_RestoreOnly(str(run_dir / "backup"), delete_checkpoint=False), *averaging]


def predict_probabilities(model, images, batch_size=64):
    """``model.predict`` in whole batches (padded), so every batch splits evenly over the devices of
    a distribution strategy."""
    count = len(images)
    padded = -count % batch_size
    if padded:
        images = np.concatenate([images, np.zeros((padded, *images.shape[1:]), images.dtype)])
    return np.asarray(model.predict(images, batch_size=batch_size, verbose=0), "float32")[:count]


def evaluate_model(model, test_arrays, config: RunConfig, *, run_dir=None) -> dict:
    """Test loss, top-1, top-5 and the confusion matrix of the class-probability output; with
    ``run_dir``, also ``curves.png`` and ``confusion_matrix.png`` there."""
    images = data_lib.prepare_images(test_arrays.images, config.image_size, config.channels, config.resize).numpy()
    predictor = model
    if main_output(model):
        predictor = inference_model(model)
    probabilities = predict_probabilities(predictor, images, config.batch_size)
    labels = test_arrays.labels
    matrix = confusion_matrix(labels, probabilities.argmax(-1), config.num_classes)
    summary = {"model": config.model, "dataset": config.dataset, "split": config.test_split,
               "epochs": config.epochs, "image_size": config.image_size, "batch_size": config.batch_size,
               "test_top1": round(top_k_accuracy(probabilities, labels, 1), 4),
               "test_top5": round(top_k_accuracy(probabilities, labels, 5), 4),
               "test_loss": round(cross_entropy(probabilities, labels), 4), "test_images": int(len(labels)),
               "params": count_trainable(model),
               "precision": distribute.precision_policy(config.mixed_precision), "strategy": config.strategy,
               "devices": distribute.replicas(config.strategy), "backend": keras.backend.backend()}
    if run_dir is not None:
        run_dir = Path(run_dir)
        title = f"{config.model} on {config.dataset}"
        plot_curves(read_history(run_dir / "history.csv"), run_dir / "curves.png", title)
        plot_confusion_matrix(matrix, config.class_names, run_dir / "confusion_matrix.png",
                              f"{title}: top-1 {summary['test_top1']:.4f}")
        summary["run_dir"] = str(run_dir)
    return summary
