"""Model registry: a name becomes a :class:`ModelSpec`, a spec becomes a Keras model.

Families register one generic builder and declare their variants as data, one
:class:`Variant` row each (the habit of timm's ``_registry.py``)::

    @register_model(
        family="lenet",
        paper="Gradient-based learning applied to document recognition",
        url="http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf",
        year=1998,
        variants=[Variant("lenet5", params=60_000, input_shape=(32, 32, 1), num_classes=10)],
    )
    def lenet5(*, inputs, num_classes, include_top, pooling, classifier_activation, head="rbf"):
        ...

Every keyword-only argument of the builder beyond the common ones is a *variant option*: a
variant's ``config`` fills them in, and users may override them through ``build(name, **opts)``.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
import os
from typing import Any, Callable

#: Arguments every builder receives from :func:`build` (the keras.applications contract).
COMMON_ARGS = ("inputs", "num_classes", "include_top", "pooling", "classifier_activation")
POOLING_CHOICES = (None, "avg", "max")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One registered name: the builder's config plus the reference numbers it is held to.

    ``params`` is the reference *trainable* parameter count at ``input_shape`` and
    ``num_classes`` (``params_tolerance`` > 0 where the reference only gives millions).
    ``macs`` is the reference multiply-add count at the default input.
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

    @property
    def options(self) -> tuple[str, ...]:
        """Variant options the builder accepts (keyword-only arguments beyond the common ones)."""
        sig = inspect.signature(self.builder)
        return tuple(
            p.name
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in COMMON_ARGS
        )


_REGISTRY: dict[str, ModelSpec] = {}


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
):
    """Decorator registering ``builder`` under every name in ``variants``.

    ``input_shape``, ``num_classes`` and ``follows`` are family defaults a variant may override;
    ``min_input_size`` is the smallest spatial size (height and width) the body accepts.
    """

    def decorator(builder):
        for v in variants:
            if v.name in _REGISTRY:
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
            )
            unknown = set(spec.config) - set(spec.options)
            if unknown:
                raise ValueError(
                    f"variant {v.name!r} configures {sorted(unknown)}, which "
                    f"{builder.__name__} does not accept (options: {list(spec.options)})"
                )
            _REGISTRY[v.name] = spec
        return builder

    return decorator


def list_models(pattern: str | None = None) -> list[str]:
    """Every registered name, sorted; ``pattern`` filters with fnmatch (``"resnet*"``)."""
    names = sorted(_REGISTRY)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; unknown names raise ``ValueError`` with close matches."""
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string, received {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, _REGISTRY, n=5, cutoff=0.5)
    prefix = [n for n in sorted(_REGISTRY) if n.startswith(key[:4])][:5] if len(key) >= 4 else []
    suggestions = list(dict.fromkeys(close + prefix))[:6]
    hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
    raise ValueError(
        f"Unknown model name {name!r}.{hint} "
        f"keras_cnn.list_models() lists all {len(_REGISTRY)} registered names."
    )


def model_info(name: str, measure: bool = True) -> dict:
    """Family, paper, year, default input, reference params/MACs/accuracy and notes of ``name``,
    and (``measure=True``, which builds the model) its measured trainable params and MACs at the
    default input beside the reference (RepVGG: MACs of the deployed net, as its paper counts)."""
    spec = get_spec(name)
    info = {
        "name": spec.name,
        "family": spec.family,
        "paper": spec.paper,
        "url": spec.url,
        "year": spec.year,
        "input_shape": spec.input_shape,
        "min_input_size": spec.min_input_size,
        "num_classes": spec.num_classes,
        "reference_params": spec.params,
        "params_tolerance": spec.params_tolerance,
        "reference_macs": spec.macs,
        "accuracy": spec.accuracy,
        "follows": spec.follows,
        "notes": spec.notes,
        "config": dict(spec.config),
        "options": list(spec.options),
    }
    if measure:
        from keras_cnn.model_table import measure as measure_model

        measured = measure_model(spec.name)
        info.update({"params": measured["params"], "macs": measured["macs"],
                     "macs_ratio": round(measured["macs"] / spec.macs, 4) if spec.macs else None})
    return info


def _check_input_shape(spec: ModelSpec, input_shape) -> tuple:
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    ok = len(shape) == 3 and all(d is None or (isinstance(d, int) and d > 0) for d in shape)
    if not ok or shape[2] is None:
        raise ValueError(
            f"{spec.name}: input_shape must be (height, width, channels) with positive integers "
            f"(height/width may be None), received {input_shape!r}; default is {spec.input_shape}"
        )
    for axis, size in zip(("height", "width"), shape[:2]):
        if size is not None and size < spec.min_input_size:
            raise ValueError(
                f"{spec.name}: input {axis} {size} is too small; the network needs at least "
                f"{spec.min_input_size}x{spec.min_input_size} (received input_shape={shape}, "
                f"default {spec.input_shape})"
            )
    return shape


def build(
    name: str,
    *,
    num_classes: int | None = None,
    input_shape=None,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation="softmax",
    weights: str | None = None,
    **variant_options,
):
    """Build the registered model ``name`` as a Keras functional model.

    Args:
        name: a registry name (``keras_cnn.list_models()``).
        num_classes: classifier width; None takes the variant's default (1000 for ImageNet nets,
            10 for LeNet, NiN and the CIFAR ResNets).
        input_shape: ``(height, width, channels)``; None takes the variant's default.
        include_top: keep the classifier; False returns the feature extractor.
        pooling: with ``include_top=False``: None (4-D feature map), ``"avg"`` or ``"max"``.
        classifier_activation: activation of the output layer (``None`` returns logits).
        weights: path to a ``.weights.h5`` file to load, or None for random initialization.
        **variant_options: family options (see ``model_info(name)["options"]``).

    Example:
        >>> import keras_cnn
        >>> model = keras_cnn.build("lenet", input_shape=(28, 28, 1), num_classes=10)
        >>> model.output_shape
        (None, 10)
    """
    import keras

    spec = get_spec(name)
    allowed = spec.options
    unknown = sorted(set(variant_options) - set(allowed))
    if unknown:
        raise ValueError(
            f"{spec.name}: unknown option(s) {unknown}; allowed options are {list(allowed)} "
            f"plus num_classes, input_shape, include_top, pooling, classifier_activation, weights"
        )
    if num_classes is None:
        num_classes = spec.num_classes
    if include_top and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"{spec.name}: num_classes must be a positive integer, received {num_classes!r}")
    if pooling not in POOLING_CHOICES:
        raise ValueError(f"{spec.name}: pooling must be one of {POOLING_CHOICES}, received {pooling!r}")
    shape = _check_input_shape(spec, input_shape if input_shape is not None else spec.input_shape)
    if weights is not None and not os.path.isfile(str(weights)):
        raise ValueError(f"{spec.name}: weights must be None or the path of a .weights.h5 file; {weights!r} does not exist")

    options = {**spec.config, **variant_options}
    inputs = keras.Input(shape=shape, name="image")
    try:
        outputs = spec.builder(
            inputs=inputs,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            **options,
        )
    except (TypeError, KeyError, IndexError, AttributeError) as error:
        if not variant_options:
            raise  # the registered configuration itself failed: a bug, not a user error
        # Structural options (depth tuples, stage tables, ...) are checked by use: a value of the
        # wrong kind surfaces here, so name what was given and what the variant uses.
        given = ", ".join(f"{k}={v!r}" for k, v in variant_options.items())
        defaults = ", ".join(f"{k}={spec.config[k]!r}" for k in variant_options if k in spec.config)
        raise ValueError(
            f"{spec.name}: cannot build with {given} ({type(error).__name__}: {error})"
            + (f"; the variant's own values are {defaults}" if defaults else "")
        ) from error
    model = outputs if isinstance(outputs, keras.Model) else keras.Model(inputs, outputs, name=spec.name)
    if weights is not None:
        model.load_weights(weights)
    return model
