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
Trained weights are declared the same way: a variant lists its published :class:`Checkpoint`
files, and the family gives one :class:`KeyMap` per checkpoint layout (``"torchvision"``,
``"timm"``) that sends every reference state_dict key to a Keras variable
(:mod:`keras_cnn.weights` reads the files and applies the maps).

This module only collects the declarations (:data:`SPECS`); :mod:`keras_cnn.registry` looks names
up and builds them.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
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


#: ImageNet normalization of torchvision and most timm checkpoints.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The data sets published checkpoints are trained on (``Checkpoint.dataset``): the classes their
#: classifiers predict, and the word ``weights=`` takes for a variant's first checkpoint of that data set.
DATASETS = ("imagenet", "cifar10")


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A published checkpoint of one variant, and what its network expects as input.

    ``url`` is the official file; ``sha256`` its published hash: the full hex digest (Hugging Face
    publishes it; or computed here from the published file itself), or the prefix the URL itself
    carries (torch.hub's convention, which torchvision's and timm's GitHub-hosted files and
    akamaster/pytorch_resnet_cifar10's follow: ``NAME-<first 8 or more hex digits of sha256>.pth`` or
    ``.th``; an empty ``sha256`` with such a URL takes that prefix, and a download is checked against
    the prefix alone, as ``torch.hub`` checks it). An empty ``sha256`` means the hash is not
    recorded here: a Hugging Face file is then checked against the sha256 the hub publishes at
    download time (:func:`keras_cnn.weights.download.published_sha256`); any other is never
    downloaded (files are only fetched hash-checked), but a copy the user passes by path is read
    with this row's normalization. ``layout`` names the family's :class:`KeyMap`
    that reads it. ``mean``/``std`` are the normalization the net was trained with (on [0, 1]
    images); ``resize_size`` then a center crop to ``crop_size`` with ``interpolation`` is its
    evaluation transform. ``tag`` is the reference's own name for it (torchvision's weights enum
    member, timm's ``arch.tag``, the file's name for a training repository's checkpoint). ``dataset``
    is what its classifier was trained on (one of :data:`DATASETS`: ImageNet-1k's 1,000 classes,
    CIFAR-10's ten): the class names ``keras-cnn predict`` gives and the word ``weights=`` takes for it
    (``"imagenet"``, ``"cifar10"``); ``top1`` the top-1 the reference reports on that data set's
    validation (ImageNet-1k) or test (CIFAR-10) images.
    """

    url: str
    sha256: str  # '' when not recorded: a name in torch.hub's convention gives the prefix it carries
    layout: str
    tag: str
    num_classes: int = 1000
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    crop_size: int = 224
    resize_size: int = 256
    interpolation: str = "bilinear"
    top1: float | None = None
    options: dict = dataclasses.field(default_factory=dict)  # build options the checkpoint needs
    dataset: str = "imagenet"

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"checkpoint {self.tag!r}: dataset must be one of {DATASETS}, received {self.dataset!r}")
        named = re.search(TORCH_HUB_HASH_IN_NAME, self.url)
        if not self.sha256 and named:  # torch.hub's convention: NAME-<sha256 prefix>.pth
            object.__setattr__(self, "sha256", named.group(1))

    @property
    def filename(self) -> str:
        """The name in the cache: the URL's last part, or for a Hugging Face file (every timm repo
        names it ``model.safetensors``) the repo's name with the file's suffix."""
        parts = self.url.rstrip("/").split("/")
        if self.url.startswith(HUB_URL) and "resolve" in parts:
            return f"{parts[parts.index('resolve') - 1]}.{parts[-1].rsplit('.', 1)[-1]}"
        return parts[-1]

    @property
    def on_hub(self) -> bool:
        """A Hugging Face file: its sha256 is published by the hub (asked at download time when not recorded)."""
        return self.url.startswith(HUB_URL)

    def preprocessing(self) -> dict:
        """What ``model_info`` and the export reports record about the checkpoint's input."""
        return {"checkpoint": f"{self.layout}:{self.tag}", "layout": self.layout, "mean": list(self.mean),
                "std": list(self.std), "resize_size": self.resize_size,
                "crop_size": self.crop_size, "interpolation": self.interpolation, "dataset": self.dataset}


TORCHVISION_URL = "https://download.pytorch.org/models/"


def torchvision_checkpoint(file: str, tag: str = "IMAGENET1K_V1", **fields) -> Checkpoint:
    """A torchvision checkpoint by its file name under :data:`TORCHVISION_URL`; the sha256 prefix is
    the one the name carries, the evaluation transform torchvision's ``ImageClassification``."""
    url = TORCHVISION_URL + file
    match = re.search(TORCH_HUB_HASH_IN_NAME, url)
    if not match:
        raise ValueError(f"torchvision checkpoint URL without a hash suffix: {url!r}")
    return Checkpoint(url=url, sha256=match.group(1), layout="torchvision", tag=tag, **fields)


HUB_URL = "https://huggingface.co/"
#: torch.hub names published files ``NAME-<first 8 or more hex digits of their sha256>.pth`` (older
#: repositories ``.th``: akamaster/pytorch_resnet_cifar10's ``resnet20-12fca82f.th``)
TORCH_HUB_HASH_IN_NAME = r"-([0-9a-f]{8,})\.(?:pth|th)$"
TIMM_URL = HUB_URL + "timm/{tag}/resolve/main/model.safetensors"


def timm_checkpoint(tag: str, *, sha256: str = "", mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_size: int = 224,
                    crop_pct: float = 0.875, interpolation: str = "bicubic", **fields) -> Checkpoint:
    """A timm checkpoint ``arch.tag`` on the Hugging Face hub, with its ``pretrained_cfg``
    (``timm.models.get_pretrained_cfg``): normalization, input size, crop fraction, interpolation."""
    return Checkpoint(url=TIMM_URL.format(tag=tag), sha256=sha256, layout="timm", tag=tag, mean=tuple(mean),
                      std=tuple(std), crop_size=crop_size, resize_size=int(crop_size / crop_pct),
                      interpolation=interpolation, **fields)


@dataclasses.dataclass(frozen=True)
class KeyMap:
    """How a reference state_dict maps onto a family's Keras layers: explicit, never by order.

    ``rules`` are ``(pattern, template)`` pairs. Every Keras layer that owns variables is named by
    its path (``stage1_block1_conv1_conv``; nested layers ``stage1_block1_se/reduce``); the first
    pattern that matches the whole path gives the reference module prefix through ``template``,
    where ``{1}`` is the pattern's first group and ``{1-1}`` that group as a number minus one
    (PyTorch counts blocks from 0; ``{1-2}`` minus two, where our stages are numbered from 2 as the
    paper's are). The variable's own name follows from the layer type (a
    ``Conv2D`` kernel is ``PREFIX.weight``, a ``BatchNormalization`` moving mean
    ``PREFIX.running_mean``, ...), with the transposes the layer needs (:mod:`keras_cnn.weights`).
    A template of ``None`` means the layer has no counterpart in the reference.

    ``head`` are the reference prefixes of the classifier, which is left untouched when the
    model's classes differ from the checkpoint's (fine-tuning) and absent with
    ``include_top=False``. ``ignore`` are patterns of reference keys that have no Keras
    counterpart (BatchNorm's ``num_batches_tracked``, auxiliary heads). ``aliases`` are
    ``(pattern, replacement)`` pairs (``re.sub``) that bring the keys of older published files to
    the reference's current names first (torchvision's DenseNet files say ``norm.1`` for
    ``norm1``). ``separable`` names the depthwise and pointwise convs inside the reference's
    separable-conv module, which a Keras ``SeparableConv2D`` reads as ``PREFIX.<name>.weight``
    (timm's ``SeparableConv2d``: ``conv_dw``, ``conv_pw``; its legacy Xception: ``conv1``, ``pointwise``).
    """

    rules: tuple
    head: tuple = ()
    ignore: tuple = (r".*\.num_batches_tracked",)
    aliases: tuple = ()
    separable: tuple = ("conv_dw", "conv_pw")

    def canonical(self, state: dict) -> dict:
        """``state`` with its keys renamed by ``aliases``."""
        if not self.aliases:
            return state
        renamed = {}
        for key, value in state.items():
            for pattern, replacement in self.aliases:
                key = re.sub(pattern, replacement, key)
            renamed[key] = value
        return renamed

    def reference_prefix(self, path: str) -> str | None:
        """The reference module prefix of the Keras layer at ``path``; ValueError if no rule matches."""
        for pattern, template in self.rules:
            match = re.fullmatch(pattern, path)
            if match:
                return None if template is None else _fill(template, match)
        raise ValueError(f"no key-map rule for the Keras layer {path!r}")

    def is_head(self, key: str) -> bool:
        return any(key == h or key.startswith(h + ".") for h in self.head)

    def is_ignored(self, key: str) -> bool:
        return any(re.fullmatch(pattern, key) for pattern in self.ignore)


def _fill(template: str, match: re.Match) -> str:
    """``template`` with ``{n}`` -> group n of ``match``, ``{n-k}`` -> that group as a number minus k."""

    def group(field):
        value = match.group(int(field.group(1)))
        return str(int(value) - int(field.group(2))) if field.group(2) else value

    return re.sub(r"\{(\d+)(?:-(\d+))?\}", group, template)


@dataclasses.dataclass(frozen=True)
class FeatureLevels:
    """Where a family's feature levels are, when the last cut of the graph at each stride is not
    what its reference takes (:mod:`keras_cnn.features`).

    ``candidates`` is a pattern (``re.fullmatch``) of the layer names that may be levels: the last
    matching layer at each stride is the level (DenseNet: the dense blocks' concatenations, not
    the transition's conv). ``layers`` overrides it for single levels (``{"P2": "stem_mixed3a_concat"}``).
    ``follows`` says whose convention it is.
    """

    candidates: str = ""
    layers: dict = dataclasses.field(default_factory=dict)
    follows: str = ""


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
    checkpoints: tuple = ()  # Checkpoint rows, the default of each layout first
    key_maps: dict | None = None  # {layout: KeyMap} replacing the family's (layers numbered per variant)
    features: FeatureLevels | None = None  # replacing the family's


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
    checkpoints: tuple = ()
    key_maps: dict = dataclasses.field(default_factory=dict)
    features: FeatureLevels | None = None

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
    key_maps: dict | None = None,
    features: FeatureLevels | None = None,
):
    """Decorator registering ``builder`` under every name in ``variants``.

    ``input_shape``, ``num_classes``, ``follows`` and ``recipe`` (the training defaults of
    ``keras_cnn.train``) are family defaults a variant may override; ``min_input_size`` is the
    smallest spatial size (height and width) the body accepts. ``tuner_knobs`` are the family's
    architecture hyperparameters for ``keras-cnn tune`` (:func:`choice`, :func:`float_range`);
    ``deployed_macs``: the reference MACs are those of the deployed (re-parameterized) net.
    ``key_maps``: ``{layout: KeyMap}`` for the layouts of the variants' checkpoints (a variant's own
    ``key_maps`` replace them, where the reference numbers its modules by position: torchvision VGG).
    ``features``: where the feature levels are when not at the graph's last cut per stride
    (:class:`FeatureLevels`; a variant's own replaces it).
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
                checkpoints=tuple(v.checkpoints),
                key_maps=dict((key_maps or {}) if v.key_maps is None else v.key_maps),
                features=v.features or features,
            )
            missing_maps = {c.layout for c in spec.checkpoints} - set(spec.key_maps)
            if missing_maps:
                raise ValueError(f"variant {v.name!r} has {sorted(missing_maps)} checkpoints but its family "
                                 "declares no key map for them")
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
