"""How a family declares itself: variants as data, its training recipe and tuner knobs.

Families register one generic builder and declare their variants as data, one
:class:`Variant` row each (the habit of timm's ``_registry.py``)::

    @register_model(
        family="lenet",
        paper="Gradient-based learning applied to document recognition",
        url="http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf",
        year=1998,
        variants=[Variant("lenet5", params=60_000, input_shape=(32, 32, 1), num_classes=10)],
        recipe=Recipe(warmup_epochs=0, augment=False, resize="pad"),
        tuner_knobs={"activation": choice("tanh", "relu")},
    )
    def lenet5(*, inputs, num_classes, include_top, pooling, classifier_activation, head="rbf"):
        ...

Every keyword-only argument of the builder beyond the common ones is a *variant option*: a
variant's ``config`` fills them in, and users may override them through ``build(name, **opts)``.
This module only collects the declarations (:data:`SPECS`); :mod:`keras_cnn.registry` looks names
up and builds them.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The training defaults of a family or variant (``keras_cnn.train`` uses them; every field can be overridden).

    The papers trained on ImageNet for 90+ epochs with SGD; our users mostly fine-tune short runs on
    small data sets, so the default is AdamW with a cosine schedule and one warm-up epoch, and a
    family declares only what its architecture needs (nets without BatchNorm diverge at AdamW 1e-3
    and take smaller rates; the Inception and mobile lines use label smoothing 0.1; LeNet pads small
    images into its input field). ``why`` says where each recipe comes from.
    """

    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: int = 1
    label_smoothing: float = 0.0
    ema: float = 0.0
    resize: str = "bilinear"
    augment: bool = True
    batch_size: int = 64
    epochs: int = 10
    why: str = "default: AdamW + cosine, one warm-up epoch"


#: Arguments every builder receives from :func:`build` (the keras.applications contract).
COMMON_ARGS = ("inputs", "num_classes", "include_top", "pooling", "classifier_activation")
POOLING_CHOICES = (None, "avg", "max")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One registered name: the builder's config plus the reference numbers it is held to.

    ``params`` is the reference *trainable* parameter count at ``input_shape`` and
    ``num_classes`` (``params_tolerance`` > 0 where the reference only gives millions).
    ``macs`` is the reference multiply-add count at the default input. ``recipe`` overrides the
    family's training recipe for this name; ``keras_applications`` names its keras.applications
    twin as ``(class name, build options that match its layout)`` for side-by-side benchmarks.
    """

    name: str
    config: dict = dataclasses.field(default_factory=dict)
    params: int | None = None
    params_tolerance: float = 0.0
    macs: float | None = None
    input_shape: tuple | None = None
    min_input_size: int | None = None
    num_classes: int | None = None
    accuracy: str = ""
    follows: str = ""
    notes: str = ""
    recipe: Recipe | None = None
    keras_applications: tuple | None = None


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything the package knows about one registry name."""

    name: str
    family: str
    builder: Callable[..., Any]
    config: dict
    paper: str
    url: str
    year: int
    input_shape: tuple
    min_input_size: int
    num_classes: int
    params: int | None
    params_tolerance: float
    macs: float | None
    accuracy: str
    follows: str
    notes: str
    recipe: Recipe
    tuner_knobs: dict
    keras_applications: tuple | None
    deployed_macs: bool

    @property
    def options(self) -> tuple[str, ...]:
        """Variant options the builder accepts (keyword-only arguments beyond the common ones)."""
        sig = inspect.signature(self.builder)
        return tuple(
            p.name
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in COMMON_ARGS
        )


#: Every registered name -> its spec, filled as the family modules are imported.
SPECS: dict[str, ModelSpec] = {}


def register_model(
    *,
    family: str,
    paper: str,
    url: str,
    year: int,
    variants: list[Variant],
    input_shape: tuple = (224, 224, 3),
    min_input_size: int = 32,
    num_classes: int = 1000,
    follows: str = "",
    recipe: Recipe | None = None,
    tuner_knobs: dict | None = None,
    deployed_macs: bool = False,
):
    """Decorator registering ``builder`` under every name in ``variants``.

    ``input_shape``, ``num_classes``, ``follows`` and ``recipe`` (the training defaults of
    ``keras_cnn.train``) are family defaults a variant may override; ``min_input_size`` is the
    smallest spatial size (height and width) the body accepts. ``tuner_knobs`` are the family's
    architecture hyperparameters for ``keras-cnn tune`` (:func:`choice`, :func:`float_range`);
    ``deployed_macs``: the reference MACs are those of the deployed (re-parameterized) net.
    """

    def decorator(builder):
        for v in variants:
            if v.name in SPECS:
                raise ValueError(f"model name {v.name!r} is registered twice")
            spec = ModelSpec(
                name=v.name,
                family=family,
                builder=builder,
                config=dict(v.config),
                paper=paper,
                url=url,
                year=year,
                input_shape=tuple(v.input_shape or input_shape),
                min_input_size=v.min_input_size or min_input_size,
                num_classes=v.num_classes or num_classes,
                params=v.params,
                params_tolerance=v.params_tolerance,
                macs=v.macs,
                accuracy=v.accuracy,
                follows=v.follows or follows,
                notes=v.notes,
                recipe=v.recipe or recipe or Recipe(),
                tuner_knobs=dict(tuner_knobs or {}),
                keras_applications=v.keras_applications,
                deployed_macs=deployed_macs,
            )
            unknown = set(spec.config) - set(spec.options)
            if unknown:
                raise ValueError(
                    f"variant {v.name!r} configures {sorted(unknown)}, which "
                    f"{builder.__name__} does not accept (options: {list(spec.options)})"
                )
            SPECS[v.name] = spec
        return builder

    return decorator


# --------------------------------------------------------------------------- tuner knobs (data)
def choice(*values) -> tuple:
    """A tuner knob taking one of ``values``."""
    return ("choice", tuple(values))


def float_range(low: float, high: float, step: float) -> tuple:
    """A tuner knob taking a float in ``[low, high]`` by ``step``."""
    return ("float", low, high, step)


#: Knobs several families share.
DROPOUT = float_range(0.0, 0.5, 0.1)
DROP_PATH = float_range(0.0, 0.2, 0.05)
BOOL = choice(False, True)
