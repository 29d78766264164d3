"""Model registry: a name becomes a :class:`ModelSpec`, a spec becomes a Keras model.

The families in :mod:`keras_cnn.models` declare their variants (:mod:`keras_cnn.models.spec`);
this module answers for them by name: :func:`list_models`, :func:`get_spec`, :func:`model_info`
(reference numbers, no build), :func:`build` and :func:`recipe_for`.

Example:
    >>> import keras_cnn
    >>> keras_cnn.list_models("lenet*")
    ['lenet', 'lenet5']
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import sys

import keras

import keras_cnn.models  # noqa: F401  (importing the families registers every variant)
from keras_cnn import features as feature_levels
from keras_cnn import weights as checkpoints
from keras_cnn.layers.input_normalization import InputNormalization
from keras_cnn.models.spec import (  # noqa: F401  (Variant, register_model: public here too)
    COMMON_ARGS,
    POOLING_CHOICES,
    SPECS,
    ModelSpec,
    Recipe,
    Variant,
    register_model,
)
from keras_cnn.weights.keras_file import read_metadata as read_weights_metadata

#: Python's recursion limit ``import keras_cnn`` raises to (never lowers): Keras walks a functional graph
#: recursively (building, cloning, loading a saved model), and the deepest registered net, resnet1202 (4,210
#: layers), needs 1,000-1,500 frames just to build (measured), past Python's default of 1,000.
RECURSION_LIMIT = 10_000


def natural_key(name: str) -> tuple:
    """Sort key that orders the numbers inside names by value: ``resnet18`` before ``resnet101``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def list_models(pattern: str | None = None) -> list[str]:
    """Every registered name in natural order (``resnet18`` before ``resnet101``); ``pattern`` filters
    with fnmatch (``"resnet*"``)."""
    names = sorted(SPECS, key=natural_key)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; unknown names raise ``ValueError`` with close matches."""
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string, received {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key in SPECS:
        return SPECS[key]
    close = difflib.get_close_matches(key, SPECS, n=5, cutoff=0.5)
    prefix = [n for n in sorted(SPECS) if n.startswith(key[:4])][:5] if len(key) >= 4 else []
    suggestions = list(dict.fromkeys(close + prefix))[:6]
    hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
    raise ValueError(
        f"Unknown model name {name!r}.{hint} "
        f"keras_cnn.list_models() lists all {len(SPECS)} registered names."
    )


def model_info(name: str) -> dict:
    """Family, paper, year, default input, reference params/MACs/accuracy, notes and options of ``name``:
    what the registry holds, without building the model (``keras_cnn.model_info`` adds measured numbers)."""
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
        "checkpoints": [checkpoint_info(c) for c in spec.checkpoints],
    }
    return info


def checkpoint_info(checkpoint) -> dict:
    """A declared checkpoint as ``model_info`` lists it: the ``weights=`` source that loads it, where it
    comes from, its hash ("hub" when the Hugging Face hub publishes it at download time), whether it
    downloads, its accuracy and its input conventions."""
    return {"source": f"{checkpoint.layout}:{checkpoint.tag}", "url": checkpoint.url,
            "sha256": checkpoint.sha256 or ("hub" if checkpoint.on_hub else None),
            "downloads": bool(checkpoint.sha256) or checkpoint.on_hub, "top1": checkpoint.top1,
            "num_classes": checkpoint.num_classes, "options": dict(checkpoint.options),
            **{k: v for k, v in checkpoint.preprocessing().items() if k not in ("checkpoint", "layout")}}


def recipe_for(name: str | None) -> Recipe:
    """The training defaults of a registry name (its family's :class:`Recipe`, or its variant's own);
    the generic default for ``None`` (a model built elsewhere)."""
    return Recipe() if name is None else get_spec(name).recipe


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
    features=None,
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
        weights: None (random initialization); ``"imagenet"`` (the variant's default ImageNet
            checkpoint: the first ImageNet one of ``model_info(name)["checkpoints"]``; ``"cifar10"``
            the same for CIFAR-10), ``"torchvision"`` / ``"timm"`` / ``"akamaster"`` (the variant's
            published checkpoint of that library, downloaded once and hash-checked) or
            ``"LIBRARY:TAG"``; the path
            of a PyTorch state_dict (``.pth``/``.pt``/``.th``/``.bin``), a ``.safetensors`` file or a timm
            folder; or a Keras ``.weights.h5`` file. A checkpoint puts its input normalization in
            the model (it takes [0, 1] images); with another ``num_classes`` than the checkpoint's
            the classifier starts fresh (fine-tuning). See :mod:`keras_cnn.weights`.
        features: None (the classifier or ``include_top=False`` body), ``True`` or level names
            such as ``("P3", "P4", "P5")``: a backbone whose output is a dict ``{"Pn": map}`` of
            the last maps at stride ``2**n`` (``model_info(name)["features"]`` lists them; see
            :mod:`keras_cnn.features`). ``include_top``, ``pooling`` and ``num_classes`` do not apply.
        **variant_options: family options (see ``model_info(name)["options"]``).

    Example:
        >>> import keras_cnn
        >>> model = keras_cnn.build("lenet", input_shape=(28, 28, 1), num_classes=10)
        >>> model.output_shape
        (None, 10)
    """
    spec = get_spec(name)
    if features is not None and features is not False:
        if pooling is not None:
            raise ValueError(f"{spec.name}: pooling={pooling!r} does not apply to a features model (its outputs are "
                             "the feature maps); leave pooling=None")
        body = build(spec.name, input_shape=input_shape, include_top=False, weights=weights, **variant_options)
        return feature_levels.feature_model(body, levels_of(spec.name, body, features, input_shape, variant_options),
                                            spec.name)
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
    source = checkpoints.resolve(spec, weights) if weights is not None else None
    if source is None or source.keras_file:
        # a file from keras-cnn convert records the checkpoint's normalization, which Keras' format does not hold
        preprocessing = _keras_file_preprocessing(spec, source.path) if source is not None else None
        model = _assemble(spec, shape, num_classes, include_top, pooling, classifier_activation, variant_options,
                          preprocessing)
        if source is not None:
            model.load_weights(source.path)
        return model

    state = checkpoints.read_state_dict(source.path)
    guess = source.checkpoint.layout if source.checkpoint else next(
        (c.layout for c in spec.checkpoints), next(iter(spec.key_maps), None))
    # the options the checkpoint's network needs (a file given by path: its layout's default checkpoint's)
    declared = source.checkpoint or next((c for c in spec.checkpoints if c.layout == guess), None)
    options = {**(declared.options if declared else {}), **variant_options}
    preprocessing = checkpoints.preprocessing_for(spec, source, guess, channels=shape[-1])
    with checkpoints.values_from_checkpoint():  # no random values drawn: transfer creates them from the file
        model = _assemble(spec, shape, num_classes, include_top, pooling, classifier_activation, options,
                          preprocessing)
        layout = checkpoints.choose_layout(model, spec, state, source)
        if layout != guess:  # a user's file in the other layout: its own normalization
            preprocessing = checkpoints.preprocessing_for(spec, source, layout, channels=shape[-1])
            model = _assemble(spec, shape, num_classes, include_top, pooling, classifier_activation, options,
                              preprocessing)
    checkpoints.transfer(model, state, spec.key_maps[layout], source=source.label)
    return model


def _keras_file_preprocessing(spec, path) -> dict | None:
    """The checkpoint preprocessing a ``.weights.h5`` file records (:mod:`keras_cnn.weights.keras_file`)."""
    record = read_weights_metadata(path)
    if record is None:
        return None
    if record["model"] != spec.name:
        raise ValueError(f"{path} holds the weights of {record['model']!r} (written by keras-cnn convert), not of "
                         f"{spec.name!r}: build({record['model']!r}, weights={str(path)!r})")
    return record.get("preprocessing")


def levels_of(name: str, body=None, features=True, input_shape=None, variant_options=None) -> list[dict]:
    """The feature levels of ``name`` (``features``: True or level names), found on ``body`` (a body built
    with ``include_top=False``) or on a probe built without drawing weights. A body with a dynamic
    input size is named by a probe at the variant's default input."""
    spec = get_spec(name)
    if body is None or body.input_shape[1] is None:
        shape = tuple(input_shape or spec.input_shape)
        if shape[0] is None:
            shape = (spec.input_shape[0], spec.input_shape[1], shape[-1])
        with keras.StatelessScope(initialize_variables=False):
            probe = build(spec.name, input_shape=shape, include_top=False, **(variant_options or {}))
        levels = feature_levels.find_levels(probe, spec.features)
    else:
        levels = feature_levels.find_levels(body, spec.features)
    return feature_levels.select(levels, features, spec.name)


def _assemble(spec, shape, num_classes, include_top, pooling, classifier_activation, variant_options,
              preprocessing=None):
    """The functional model of ``spec``; ``preprocessing`` (a checkpoint's) puts its normalization first."""
    options = {**spec.config, **variant_options}
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    if preprocessing:
        x = InputNormalization(preprocessing["mean"], preprocessing["std"], resize_size=preprocessing["resize_size"],
                               crop_size=preprocessing["crop_size"], interpolation=preprocessing["interpolation"],
                               checkpoint=preprocessing["checkpoint"], dataset=preprocessing.get("dataset") or "",
                               name="checkpoint_normalization")(inputs)
    try:
        outputs = spec.builder(
            inputs=x,
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
    if isinstance(outputs, keras.Model):
        return outputs
    try:
        return keras.Model(inputs, outputs, name=spec.name)
    except RecursionError:  # Keras walks the graph recursively (resnet110: about 150 frames, resnet1202: 1,500)
        raise ValueError(f"{spec.name}: the network is too deep for Keras to walk its graph within Python's recursion "
                         f"limit ({sys.getrecursionlimit()}; importing keras_cnn raises it to at least "
                         f"{RECURSION_LIMIT:,}); raise it with sys.setrecursionlimit() and build again") from None
