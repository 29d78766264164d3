"""Calibration images for int8 export: the activation ranges of a full-integer file are measured on them.

An int8 file is only as good as its calibration data: each activation's range is set from what the
representative images produce, so images of another domain set ranges the real inputs overflow or
waste. Measured on a real ImageNet MobileNetV2 and real ImageNet photos (benchmarks/RESULTS.md,
"int8 calibration"): calibrated on scikit-learn's digits the int8 file lost about 12 points of top-1;
calibrated on natural photos it stays within about a point of float.

:func:`bundled_photos` is the default for a model with no calibration data of its own: crops of
ten public-domain / CC0 photographs shipped with the package (``calibration_photos/``, provenance in
its README.md), drawn like a training pipeline draws them (random area 20-100 %, aspect 3/4-4/3,
horizontal flips, colour jitter) with a fixed seed, so every export calibrates on the same images. They stand in
for natural photos; for any other domain (digits, X-rays, satellite images) pass your own
(``representative_data=`` / ``--calibration-data``).

Example:
    >>> from keras_cnn.deploy.calibration import bundled_photos
    >>> bundled_photos(64, 3, count=8).shape
    (8, 64, 64, 3)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np

PHOTO_FOLDER = Path(__file__).parent / "calibration_photos"
DEFAULT_COUNT = 200
BUNDLED = "bundled photos"  # how reports name the default
log = logging.getLogger("keras_cnn")


class Calibration(NamedTuple):
    """Resolved calibration data: the images (or a callable giving them) and how reports name them."""

    images: object
    description: str


def photo_files() -> list[Path]:
    return sorted(PHOTO_FOLDER.glob("*.jpg"))


def bundled_photos(image_size, channels: int = 3, count: int = DEFAULT_COUNT, seed: int = 0) -> np.ndarray:
    """``count`` float32 images in [0, 1], ``[count, H, W, channels]``: random resized crops (with
    flips) of the bundled photos, cycling through them, the same for the same arguments."""
    from PIL import Image

    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if count < 1:
        raise ValueError(f"count must be >= 1, received {count}")
    rng = np.random.default_rng(seed)
    photos = [Image.open(file).convert("RGB") for file in photo_files()]
    images = np.empty((count, height, width, channels), "float32")
    for i in range(count):
        photo = photos[i % len(photos)]
        left, top, right, bottom = _random_crop_box(photo.size, rng)
        crop = photo.crop((left, top, right, bottom)).resize((width, height), Image.BILINEAR)
        if rng.uniform() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        array = _jittered(crop, rng) / 255.0
        images[i] = array.mean(-1, keepdims=True) if channels == 1 else np.resize(array, (height, width, channels))
    return images


def _jittered(image, rng) -> np.ndarray:
    """Colour, brightness and contrast drawn at random, then a random gain per channel (which also colours
    the grayscale photos): ten photos then span more of the colours real photos have. Measured on the real
    ImageNet MobileNetV2 (benchmarks/RESULTS.md): int8 top-1 82.7 % plain crops, 84.0 % jittered, float 86.0 %."""
    from PIL import ImageEnhance

    image = ImageEnhance.Color(image).enhance(rng.uniform(0.3, 2.5))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.6, 1.5))
    return np.clip(np.asarray(image, "float32") * rng.uniform(0.6, 1.4, 3), 0, 255)


def _random_crop_box(size, rng, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    """A box of random area share ``scale`` and aspect ``ratio`` inside an image of ``size`` (the
    Inception-style crop torchvision's RandomResizedCrop draws), or the central square."""
    width, height = size
    for _ in range(10):
        area = width * height * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        w, h = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def resolve(source, shape, *, count: int = DEFAULT_COUNT, checkpoint: dict | None = None, resize: str = "bilinear",
            data_size=None, data_dir=None):
    """The :class:`Calibration` ``(images, description)`` for ``source`` at a file's input ``shape``
    ``(batch, H, W, C)``.

    ``source``: None or ``"bundled"`` (:func:`bundled_photos`); an image folder, an image file or a
    list of them (read as ``keras-cnn predict`` reads images: a ``checkpoint``'s resize and center
    crop apply); a data set name of :func:`keras_cnn.data.load_arrays` (its train split:
    ``"digits"``, ``"fashion_mnist"``, any tensorflow-datasets name); float images in [0, 1]
    (an array, used whole); a callable returning them; or a :class:`Calibration` (returned as it is).
    Folders, files, data sets and the bundled photos give at most ``count`` images."""
    from keras_cnn import data

    if not isinstance(count, int) or count < 1:
        raise ValueError(f"the number of calibration images must be a positive integer, received {count!r}")
    height, width, channels = shape[1:]
    if isinstance(source, Calibration):
        return source
    if source is None or (isinstance(source, str) and source == "bundled"):
        if source is None:
            log.warning("keras_cnn: int8 calibrated on the %d bundled photos, a stand-in for natural images (about 2 "
                        "points of top-1 lost on ImageNet against 10 of the user's own); pass 10 or more of your own "
                        "(representative_data=, --calibration-data FOLDER)", len(photo_files()))
        return Calibration(bundled_photos((height, width), channels, count),
                f"{BUNDLED}: {count} random crops of the {len(photo_files())} public-domain / CC0 photos shipped in "
                "keras_cnn/deploy/calibration_photos (the default; pass your own for another domain)")
    if callable(source):
        return Calibration(source, "a generator given by the caller")
    if isinstance(source, (str, Path)) or (isinstance(source, (list, tuple)) and source
                                           and all(isinstance(s, (str, Path)) for s in source)):
        paths = [source] if isinstance(source, (str, Path)) else list(source)
        if all(Path(p).exists() for p in paths):
            files = data.image_files(paths)[:count]
            if height != width:
                raise ValueError(f"calibration from image files needs a square input, the model takes {height}x{width}")
            images = data.load_images(files, height, channels, resize, data_size, checkpoint=checkpoint)
            where = str(source) if isinstance(source, (str, Path)) else f"{len(paths)} given paths"
            return Calibration(images, f"{len(images)} images from {where}")
        if isinstance(source, str) and not any(sep in source for sep in "/\\"):
            try:
                arrays = data.load_arrays(source, "train", data_dir)
            except ValueError as error:
                raise ValueError(f"calibration data {source!r} is neither an image folder or file nor a data set "
                                 f"this machine has: {error}") from error
            images = data.prepare_images(arrays.images[:count], (height, width), channels, resize).numpy()
            return Calibration(images, f"{len(images)} images of the {source} train split (the first {len(images)})")
        missing = [str(p) for p in paths if not Path(p).exists()]
        raise ValueError(f"calibration data: no such image file or folder: {', '.join(missing)}")
    images = np.asarray(source, "float32")
    if images.ndim != 4 or tuple(images.shape[1:]) != (height, width, channels):
        raise ValueError(f"calibration images must be float images [N, {height}, {width}, {channels}] in [0, 1], "
                         f"received an array of shape {images.shape}")
    return Calibration(images, f"{len(images)} images given by the caller")
