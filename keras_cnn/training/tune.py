"""Keras Tuner over the whole zoo: :class:`HyperCNN` and :func:`tune` (``keras-cnn tune``).

A family's search space is its real knobs (which variant, width ``alpha`` / ``scale``, SE on or
off, dropout, drop-path: the ``tuner_knobs`` each family declares in ``models/<family>.py``, see
:data:`FAMILY_KNOBS`) plus the recipe: optimizer, learning rate,
weight decay, label smoothing and augmentation strength. Every knob can be fixed
(``fixed={"alpha": 0.5}``) or narrowed (``choices={"variant": ["mobilenet_v2"]}``). A trial
trains exactly as :func:`keras_cnn.train` would (same data pipeline, compile and schedule), on
the training split minus a held-out validation part; the test split is only used to score the
best model at the end.

Distributed tuning uses KerasTuner's chief/worker mode: start the same ``keras-cnn tune`` command
once with ``KERASTUNER_TUNER_ID=chief`` and once per worker with ``KERASTUNER_TUNER_ID=tuner0``,
``tuner1``, ..., all with ``KERASTUNER_ORACLE_IP`` / ``KERASTUNER_ORACLE_PORT`` set to the chief's
address and the same ``--directory`` (a shared file system). The chief serves the oracle and, when
the trials are done, writes the results table and the best model.

Example:
    >>> from keras_cnn.training.tune import tune
    >>> result = tune("mobilenet", "digits", tuner="random", max_trials=3, epochs=2,
    ...               directory="runs/tune/mobilenet_digits")
    >>> result.best_summary["test_top1"] > 0.5
    True
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import warnings
from pathlib import Path

import keras
import keras_tuner
import numpy as np

from keras_cnn import data as data_lib
from keras_cnn.atomic import atomic_path, write_text
from keras_cnn.registry import build, get_spec, list_models, recipe_for
from keras_cnn.training.callbacks import save_atomically
from keras_cnn.training.logits import fitting_on_logits
from keras_cnn.training.run import RunConfig, compile_model, evaluate_model, load_splits, make_pipelines

TUNERS = ("random", "hyperband", "bayesian")


def _family_knobs() -> dict[str, dict[str, tuple]]:
    knobs: dict[str, dict[str, tuple]] = {}
    for name in list_models():
        spec = get_spec(name)
        knobs.setdefault(spec.family, {}).update(spec.tuner_knobs)
    return knobs


#: Architecture knobs per family, gathered at import from the ``tuner_knobs`` each family declares in
#: ``models/<family>.py`` (``get_spec(name).tuner_knobs``, which the search reads): ("choice", values)
#: or ("float", low, high, step). A knob is applied only to the variants whose builder takes it (a
#: KerasTuner conditional scope).
FAMILY_KNOBS: dict[str, dict[str, tuple]] = _family_knobs()
OPTIMIZER_CHOICES = ("adamw", "sgd")
SGD_LEARNING_RATES = (0.01, 0.2)  # SGD with momentum needs rates ~50x AdamW's
OPTIONS_MEANING_NONE = {"bypass": "none"}  # KerasTuner choices cannot hold None


def family_variants(family_or_names, min_size=None) -> list[str]:
    """Registry names of a family (or the given names), those that take ``min_size`` input."""
    families = {get_spec(n).family for n in list_models()}
    if isinstance(family_or_names, str) and family_or_names in families:
        names = [n for n in list_models() if get_spec(n).family == family_or_names]
    else:
        requested = [family_or_names] if isinstance(family_or_names, str) else list(family_or_names)
        if not requested:
            raise ValueError(f"name a family ({', '.join(sorted(families))}) or registry names")
        names = [get_spec(n).name for n in requested]  # unknown names fail with the close matches
    if min_size is not None:
        fitting = [n for n in names if get_spec(n).min_input_size <= min_size]
        if not fitting:
            raise ValueError(f"no variant of {family_or_names!r} takes {min_size}x{min_size} input (the smallest "
                             f"takes {min(get_spec(n).min_input_size for n in names)}); raise image_size")
        names = fitting
    return names


class HyperCNN(keras_tuner.HyperModel):
    """A KerasTuner hypermodel over a family (or a list of registry names).

    Args:
        family_or_names: a family (``"mobilenet"``, ``"resnet"``, ...) or registry names.
        num_classes, input_shape: what the models are built for (from ``dataset`` when omitted).
        dataset: a :mod:`keras_cnn.data` source; ``None`` for a build-only hypermodel (then pass
            ``x``/``validation_data`` to ``tuner.search`` yourself).
        fixed: ``{hyperparameter: value}`` to pin; choices: ``{hyperparameter: [values]}`` to narrow.
        epochs: the run length the learning-rate schedule decays over.
        validation_fraction: share of the training split held out to score trials.
    """

    def __init__(self, family_or_names="mobilenet", num_classes=None, input_shape=None, *, dataset="digits",
                 image_size=None, data_dir=None, limit=None, batch_size=None, epochs=10, fixed=None, choices=None,
                 validation_fraction=0.2, seed=0, name=None):
        super().__init__(name=name or (family_or_names if isinstance(family_or_names, str) else "cnn"))
        self.fixed, self.choices = dict(fixed or {}), {k: list(v) for k, v in (choices or {}).items()}
        self.epochs, self.seed = epochs, seed
        self.arrays = None
        self.declaring = False
        first = family_variants(family_or_names)[0]
        self.config = RunConfig(model=first, dataset=dataset or "arrays", data_dir=data_dir, limit=limit, seed=seed,
                                epochs=epochs, batch_size=batch_size or recipe_for(first).batch_size)
        if input_shape is not None:
            self.config.image_size, self.config.channels = int(input_shape[0]), int(input_shape[-1])
        if image_size is not None:
            self.config.image_size = int(image_size)
        self.config.num_classes = num_classes
        if dataset is not None:
            resolved = _input_for_all(self.config, family_or_names)
            splits = load_splits(resolved)  # fills in size, channels and classes from the data
            self.config = dataclasses.replace(resolved, model=first)
            train, val = data_lib.stratified_split(splits["train"], validation_fraction, seed)
            self.arrays = {"train": train, "test": val, "final_test": splits["test"]}
        if self.config.image_size is None or self.config.num_classes is None:
            raise ValueError("without a dataset, pass num_classes and input_shape")
        self.variants = family_variants(family_or_names, self.config.image_size)

    @property
    def input_shape(self):
        return (self.config.image_size, self.config.image_size, self.config.channels)

    # ----------------------------------------------------------------- the search space
    def _knob(self, hp, name, spec):
        if name in self.fixed:
            return hp.Fixed(name, self.fixed[name])
        if name in self.choices:
            return hp.Choice(name, self.choices[name])
        if spec[0] == "choice":
            return hp.Choice(name, list(spec[1]))
        if spec[0] == "log":
            return hp.Float(name, spec[1], spec[2], sampling="log")
        return hp.Float(name, spec[1], spec[2], step=spec[3])

    def architecture(self, hp) -> tuple[str, dict]:
        """``(variant, builder options)`` sampled from ``hp``."""
        variant = self._knob(hp, "variant", ("choice", self.variants))
        options = {}
        knobs = {}
        for name in self.variants:
            spec = get_spec(name)
            for knob, knob_spec in spec.tuner_knobs.items():
                if knob in spec.options:
                    knobs.setdefault(knob, (knob_spec, []))[1].append(name)
        for knob, (knob_spec, takers) in knobs.items():
            with hp.conditional_scope("variant", takers):
                value = self._knob(hp, knob, knob_spec)
            if variant in takers:
                options[knob] = None if OPTIONS_MEANING_NONE.get(knob) == value else value
        return variant, options

    def recipe(self, hp, variant) -> dict:
        """Optimizer, learning rate, weight decay, label smoothing, augmentation strength."""
        base = recipe_for(variant)
        optimizer = self._knob(hp, "optimizer", ("choice", OPTIMIZER_CHOICES))
        with hp.conditional_scope("optimizer", ["adamw", "adam"]):
            adam_lr = self._knob(hp, "learning_rate", ("log", base.learning_rate / 10, base.learning_rate * 10))
        with hp.conditional_scope("optimizer", ["sgd"]):
            sgd_lr = self._knob(hp, "sgd_learning_rate", ("log", *SGD_LEARNING_RATES))
        return {"optimizer": optimizer, "learning_rate": sgd_lr if optimizer == "sgd" else adam_lr,
                "weight_decay": self._knob(hp, "weight_decay", ("log", 1e-5, 1e-1)),
                "label_smoothing": self._knob(hp, "label_smoothing", ("choice", (0.0, 0.1))),
                "translate": self._knob(hp, "translate", ("choice", (0.0, 0.1, 0.2)))}

    def trial_config(self, hp) -> RunConfig:
        """The :class:`RunConfig` a trial trains with (what ``keras-cnn train`` would run)."""
        variant, options = self.architecture(hp)
        return _with_recipe(self.config, variant, options, self.recipe(hp, variant))

    def declare_hyperparameters(self, hp):
        """Register the whole space without building a model: every knob is declared inside its
        conditional scope whatever the sampled variant, so one pass finds them all."""
        self.trial_config(hp)

    @contextlib.contextmanager
    def declaring_space(self):
        """While a tuner is created, :meth:`build` only declares (KerasTuner builds the hypermodel
        once per conditional scope to discover the space; models are not needed for that)."""
        self.declaring = True
        try:
            yield
        finally:
            self.declaring = False

    def build(self, hp):
        config = self.trial_config(hp)
        if self.declaring:
            return None
        model = build(config.model, num_classes=config.num_classes, input_shape=self.input_shape,
                      **config.model_options)
        steps = None
        if self.arrays is not None:
            steps = int(np.ceil(len(self.arrays["train"].labels) / config.batch_size))
        compile_model(model, steps_per_epoch=steps, epochs=self.epochs, optimizer=config.optimizer,
                      learning_rate=config.learning_rate, schedule=config.schedule,
                      warmup_epochs=min(config.warmup_epochs, max(0, self.epochs - 1)),
                      weight_decay=config.weight_decay, label_smoothing=config.label_smoothing)
        return model

    def fit(self, hp, model, *args, **kwargs):
        """Train on the package's pipeline, unless ``x`` is passed to ``tuner.search``."""
        with fitting_on_logits(model):
            if args or "x" in kwargs or self.arrays is None:
                return model.fit(*args, **kwargs)
            config = self.trial_config(hp)
            train, val, _ = make_pipelines(config, self.arrays, model)
            kwargs.setdefault("verbose", 0)
            return model.fit(train, validation_data=val, shuffle=False, **kwargs)


def _with_recipe(config, variant, options, recipe):
    translate = recipe.pop("translate")
    return dataclasses.replace(config, model=variant, model_options=options, augment=translate > 0,
                               translate=translate, recipe="tuned", **recipe)


def _input_for_all(config, family_or_names):
    """Config for loading data: the image size defaults to one every variant takes."""
    if config.image_size is not None:
        return config
    names = family_variants(family_or_names)
    return dataclasses.replace(config, model=max(names, key=lambda n: get_spec(n).min_input_size))


# --------------------------------------------------------------------------- tune
@dataclasses.dataclass
class TuneResult:
    """Trials (best first), the best model and its config, and its score on the test split."""

    rows: list
    best_model: keras.Model | None
    best_config: RunConfig | None
    best_summary: dict
    directory: Path


def make_tuner(kind, hypermodel, *, max_trials=10, epochs=10, directory, project_name="search", overwrite=False,
               seed=0, executions_per_trial=1):
    """A RandomSearch / Hyperband / BayesianOptimization tuner on ``val_accuracy``; the same ``seed`` samples the
    same trials (KerasTuner's oracle gets ``seed + 1``: it replaces a seed of 0 by a random one)."""
    if kind not in TUNERS:
        raise ValueError(f"tuner must be one of {list(TUNERS)}, received {kind!r}")
    # keras_tuner's Oracle: ``self.seed = seed or random.randint(1, 10000)``, so seed=0 was a different search
    # in every process
    common = {"hypermodel": hypermodel, "objective": keras_tuner.Objective("val_accuracy", "max"), "seed": seed + 1,
              "directory": str(directory), "project_name": project_name, "overwrite": overwrite,
              "executions_per_trial": executions_per_trial}
    declaring = hypermodel.declaring_space() if isinstance(hypermodel, HyperCNN) else contextlib.nullcontext()
    with declaring:
        if kind == "random":
            return keras_tuner.RandomSearch(max_trials=max_trials, **common)
        if kind == "bayesian":
            return keras_tuner.BayesianOptimization(max_trials=max_trials, **common)
        return keras_tuner.Hyperband(max_epochs=epochs, factor=3, hyperband_iterations=1, **common)


def is_worker() -> bool:
    """Whether this process is a KerasTuner worker of a chief/worker search."""
    return bool(os.environ.get("KERASTUNER_ORACLE_IP")) and os.environ.get("KERASTUNER_TUNER_ID") != "chief"


def tune(family_or_names="mobilenet", dataset="digits", *, tuner="random", max_trials=10, epochs=5,
         directory=None, overwrite=False, fixed=None, choices=None, image_size=None, batch_size=None, limit=None,
         data_dir=None, seed=0, verbose=0) -> TuneResult:
    """Search, then write ``results.csv``, ``best.keras`` and ``config.json`` into ``directory``
    (``keras-cnn evaluate`` / ``predict`` / ``export`` take that folder or file) and score the best
    model on the test split. ``overwrite=False`` resumes a search found in ``directory``. ``max_trials``
    and ``epochs`` are integers >= 1; ``directory`` is a folder (made when missing)."""
    for key, value in (("max_trials", max_trials), ("epochs", epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be an integer >= 1, received {value!r}")
    label = family_or_names if isinstance(family_or_names, str) else "_".join(family_or_names)
    directory = Path(directory or Path("runs") / "tune" / f"{label}_{dataset}")
    for place in (directory, *directory.parents):  # the nearest part of the path that exists must be a folder
        if place.exists():
            if not place.is_dir():
                raise ValueError(f"directory {directory} cannot be made: {place} is a file, not a folder")
            break
    hypermodel = HyperCNN(family_or_names, dataset=dataset, image_size=image_size, data_dir=data_dir, limit=limit,
                          batch_size=batch_size, epochs=epochs, fixed=fixed, choices=choices, seed=seed)
    search = make_tuner(tuner, hypermodel, max_trials=max_trials, epochs=epochs, directory=directory,
                        overwrite=overwrite, seed=seed)
    search.search(epochs=epochs, verbose=verbose)
    if is_worker():
        return TuneResult([], None, None, {}, directory)
    rows = results_table(search)
    write_results(rows, directory / "results.csv")
    best_hp = search.get_best_hyperparameters(1)[0]
    with warnings.catch_warnings():  # the trial checkpoints hold weights only, not the optimizer state
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        best_model = search.get_best_models(1)[0]
    best_config = hypermodel.trial_config(best_hp)
    save_atomically(best_model, directory / "best.keras")
    write_text(directory / "config.json", json.dumps(dataclasses.asdict(best_config), indent=2) + "\n")
    summary = evaluate_model(best_model, hypermodel.arrays["final_test"], best_config)
    summary.update({"tuner": tuner, "trials": len(rows), "best_trial": rows[0]["trial"] if rows else None,
                    "directory": str(directory)})
    write_text(directory / "summary.json", json.dumps(summary) + "\n")
    print_table(rows)
    print(json.dumps(summary))
    return TuneResult(rows, best_model, best_config, summary, directory)


def results_table(search) -> list[dict]:
    """One row per finished trial, best score first."""
    rows = []
    for trial in search.oracle.trials.values():
        if trial.score is None:
            continue
        rows.append({"trial": trial.trial_id, "score": round(float(trial.score), 4),
                     **{k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}})
    return sorted(rows, key=lambda r: -r["score"])


def write_results(rows, path):
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def print_table(rows):
    if not rows:
        print("no finished trials")
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


def _cell(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)
