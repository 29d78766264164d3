"""Trained weights: torchvision and timm checkpoints loaded into keras_cnn models, by explicit key maps.

``keras_cnn.build(name, weights=SOURCE)`` takes as ``SOURCE``:

* ``"imagenet"`` (what keras.applications takes): the variant's default ImageNet checkpoint, the
  first ImageNet one of ``keras_cnn.model_info(name)["checkpoints"]`` (ValueError for a variant with
  none); ``"cifar10"`` the same for CIFAR-10 (the paper's CIFAR ResNets);
* ``"torchvision"``, ``"timm"`` or ``"akamaster"``: the variant's default checkpoint of that library
  (akamaster/pytorch_resnet_cifar10's trained CIFAR ResNets), downloaded once into Keras' cache and
  checked against its published sha256 (:mod:`.download`: torchvision's and akamaster's file names
  carry it, the Hugging Face hub publishes it for timm's files);
* ``"torchvision:TAG"`` / ``"timm:ARCH.TAG"`` / ``"akamaster:FILE"``: one of the variant's declared
  checkpoints by name (``keras_cnn.model_info(name)["checkpoints"]`` lists them);
* a path to a PyTorch state_dict (``.pth``, ``.pt``, ``.th``, ``.bin``, read with ``weights_only=True``),
  a ``.safetensors`` file, or a timm / Hugging Face folder (:mod:`.files`);
* a ``.weights.h5`` file saved by Keras (loaded as Keras loads it).

A checkpoint's normalization goes into the model as its first layer
(:class:`~keras_cnn.layers.InputNormalization`), so the model takes [0, 1] images and gives the
checkpoint's answer. The key maps live with their families (``KeyMap`` in each
``keras_cnn/models/<family>.py``); :mod:`.transfer` applies them, all or nothing.

Example:
    >>> import keras_cnn
    >>> model = keras_cnn.build("resnet18", weights="torchvision")  # doctest: +SKIP
    >>> tuned = keras_cnn.build("resnet18", weights="torchvision", num_classes=10)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path

from keras_cnn.models.spec import DATASETS, IMAGENET_MEAN, IMAGENET_STD, Checkpoint, ModelSpec
from keras_cnn.weights.download import fetch, fetch_from_hub
from keras_cnn.weights.files import checkpoint_file, folder_preprocessing, read_state_dict
from keras_cnn.weights.transfer import head_layer_names, plan, transfer, values_from_checkpoint

#: the checkpoint layouts a ``weights=`` source may name (``"timm"``, ``"timm:ARCH.TAG"``)
LIBRARIES = ("torchvision", "timm", "akamaster")
#: keras.applications' name for pretrained weights: here the variant's first ImageNet checkpoint
IMAGENET = "imagenet"
#: CIFAR-10's classes in the data set's own order (tfds ``cifar10``, the Keras and torchvision loaders)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
KERAS_SUFFIXES = (".weights.h5", ".h5")


@dataclasses.dataclass
class Source:
    """A resolved ``weights=`` argument: the file to read and what is known about its checkpoint."""

    path: Path
    label: str  # how messages name it
    checkpoint: Checkpoint | None = None  # a declared checkpoint (download), else None (a user's file)
    preprocessing: dict = dataclasses.field(default_factory=dict)  # from a timm folder's config.json

    @property
    def keras_file(self) -> bool:
        return str(self.path).endswith(KERAS_SUFFIXES)


def is_library_source(weights) -> bool:
    return isinstance(weights, str) and (weights in DATASETS or weights.split(":", 1)[0] in LIBRARIES)


def checkpoint_for(spec: ModelSpec, weights: str) -> Checkpoint:
    """The declared checkpoint ``weights`` (``"imagenet"``, ``"torchvision"``, ``"timm:resnet50.a1_in1k"``)
    names; a data set's name (``"imagenet"``, keras.applications' word, or ``"cifar10"``) is the
    variant's first declared checkpoint trained on it."""
    if weights in DATASETS:
        trained = [c for c in spec.checkpoints if c.dataset == weights]
        if not trained:
            others = sorted({c.dataset for c in spec.checkpoints})
            instead = (f"its checkpoints are trained on {', '.join(others)}: weights={others[0]!r} or one of "
                       f"{[f'{c.layout}:{c.tag}' for c in spec.checkpoints]}" if others else
                       f"model_info({spec.name!r})['checkpoints'] is empty")
            raise ValueError(f"{spec.name}: weights={weights!r} means the variant's default {weights} checkpoint, and "
                             f"none is published for {spec.name} ({instead}). Pass the path of a state_dict (.pth / "
                             ".safetensors) you have instead, or weights=None.")
        return trained[0]
    library, _, tag = weights.partition(":")
    candidates = [c for c in spec.checkpoints if c.layout == library]
    if not candidates:
        have = sorted({c.layout for c in spec.checkpoints})
        raise ValueError(f"{spec.name}: no {library} checkpoint is known for this variant"
                         + (f"; it has {', '.join(have)} checkpoints" if have else "; it has no published checkpoint")
                         + ". Pass the path of a state_dict (.pth / .safetensors) you have instead.")
    if not tag:
        return candidates[0]
    for checkpoint in candidates:
        if tag in (checkpoint.tag, checkpoint.tag.split(".", 1)[-1]):
            return checkpoint
    tags = [c.tag for c in candidates]
    close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.4)
    raise ValueError(f"{spec.name}: unknown {library} checkpoint {tag!r}; known: {tags}"
                     + (f". Did you mean: {', '.join(close)}?" if close else ""))


def resolve(spec: ModelSpec, weights) -> Source:
    """Turn ``weights=`` into a :class:`Source` (downloading a declared checkpoint if needed)."""
    if is_library_source(weights):
        checkpoint = checkpoint_for(spec, weights)
        if checkpoint.sha256:
            path = fetch(checkpoint.url, checkpoint.sha256, checkpoint.filename)
        elif checkpoint.on_hub:  # checked against the sha256 the hub publishes
            path = fetch_from_hub(checkpoint.url, checkpoint.filename)
        else:
            raise ValueError(f"{spec.name}: the sha256 of {checkpoint.url} is not recorded in keras_cnn, and files are "
                             "only downloaded hash-checked. Download it yourself and pass its path as weights= "
                             "(its layout and normalization are known)")
        return Source(path, f"{checkpoint.layout}:{checkpoint.tag}", checkpoint)
    if not isinstance(weights, (str, Path)):
        raise ValueError(f"{spec.name}: weights must be None, a data set ({', '.join(map(repr, DATASETS))}), a "
                         f"library ({', '.join(map(repr, LIBRARIES))}), 'LIBRARY:TAG' or a path, received {weights!r}")
    path = Path(weights)
    if str(path).endswith(KERAS_SUFFIXES):
        if not path.is_file():
            raise ValueError(f"{spec.name}: weights file {str(path)!r} does not exist")
        return Source(path, str(path))
    if not path.exists():
        raise ValueError(f"{spec.name}: weights {str(weights)!r} is neither a file nor a folder nor one of "
                         f"{', '.join(map(repr, DATASETS + LIBRARIES))}, 'LIBRARY:TAG' (checkpoints of this variant: "
                         f"{[f'{c.layout}:{c.tag}' for c in spec.checkpoints] or 'none'})")
    checkpoint_file(path)  # a clear error for a wrong kind of file, before anything is built
    return Source(path, str(path), preprocessing=folder_preprocessing(path))


def choose_layout(model, spec: ModelSpec, state: dict, source: Source) -> str:
    """The key map that reads ``state``: the declared checkpoint's, or for a user's file the one
    that leaves the fewest keys unmatched (all of them are listed when none fits)."""
    if source.checkpoint is not None:
        return source.checkpoint.layout
    if not spec.key_maps:
        raise ValueError(f"{spec.name}: no checkpoint layout is known for this family, so {source.label} cannot be "
                         "mapped onto it; keras_cnn reads torchvision and timm layouts where the family has them")
    if len(spec.key_maps) == 1:  # nothing to choose (and no trial mapping of a large file)
        return next(iter(spec.key_maps))

    def misfit(layout):
        matched = plan(model, state, spec.key_maps[layout])
        return len(matched["missing"]) + len(matched["unexpected"]) + len(matched["mismatched"])

    return min(spec.key_maps, key=misfit)


def preprocessing_for(spec: ModelSpec, source: Source, layout: str | None = None, channels: int = 3) -> dict:
    """Normalization and evaluation transform of the checkpoint behind ``source``; for a one-channel
    model the RGB mean and std are averaged (the first conv's kernel is summed over RGB to match)."""
    checkpoint = source.checkpoint or next((c for c in spec.checkpoints if c.layout == layout), None)
    found = checkpoint.preprocessing() if checkpoint else {
        "checkpoint": source.label, "layout": layout, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
        "resize_size": None, "crop_size": None, "interpolation": "bilinear", "dataset": ""}
    if source.checkpoint is None:
        found["checkpoint"] = source.label
    for key in ("mean", "std", "crop_size", "interpolation"):
        if key in source.preprocessing:
            found[key] = list(source.preprocessing[key]) if key in ("mean", "std") else source.preprocessing[key]
    if channels == 1 and len(found["mean"]) == 3:
        found["mean"], found["std"] = [sum(found["mean"]) / 3], [sum(found["std"]) / 3]
    return found


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names in the order of torchvision's and timm's classifiers
    (shipped with the package, so ``keras-cnn predict`` names classes offline)."""
    return (Path(__file__).parent / "imagenet_classes.txt").read_text().splitlines()


def class_names(dataset: str) -> list[str]:
    """The class names of a checkpoint's data set (``Checkpoint.dataset``) in its classifier's order: ImageNet-1k's
    1,000 or CIFAR-10's ten; an empty list for an unknown (or empty) name."""
    if dataset == IMAGENET:
        return imagenet_class_names()
    if dataset == "cifar10":
        return list(CIFAR10_CLASSES)
    return []


def freezable_layers(model, spec: ModelSpec) -> list:
    """The layers of ``model`` outside every checkpoint classifier of its family: what fine-tuning
    with a frozen backbone freezes (``keras-cnn train --freeze-epochs``)."""
    heads = set()
    for key_map in spec.key_maps.values():
        try:
            heads |= head_layer_names(model, key_map)
        except ValueError:  # a layer this layout does not map (another layout's model)
            continue
    if not heads:
        raise ValueError(f"{spec.name}: its family declares no checkpoint classifier; no backbone to freeze")
    return [layer for layer in model.layers if layer.name not in heads and layer.weights]


__all__ = ["CIFAR10_CLASSES", "DATASETS", "IMAGENET", "LIBRARIES", "Source", "checkpoint_for", "choose_layout",
           "class_names", "fetch", "freezable_layers", "imagenet_class_names", "is_library_source", "preprocessing_for",
           "read_state_dict", "resolve", "transfer", "values_from_checkpoint"]
