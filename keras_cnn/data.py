"""Data sets by name, as ``tf.data`` pipelines of ``(image, label)`` any registered model consumes.

Sources:
- ``"digits"``: scikit-learn's bundled 8x8 digits (1,797 images, always offline: the default);
  a fixed stratified 80/20 train/test split (``split="train"`` / ``"test"``).
- ``"fashion_mnist"`` / ``"mnist"`` from IDX files (``train-images-idx3-ubyte[.gz]`` ...) in
  ``data_dir``; ``fashion_mnist`` finds Debian's ``/usr/share/datasets/fashion-mnist`` by itself.
- any tensorflow-datasets image-classification name through ``tfds.load`` (tfds split syntax),
  and a data set a user prepared with tfds (their own ``GeneratorBasedBuilder``'s
  ``download_and_prepare``) in ``data_dir``: tfds reads it from its files, without its class.
- an image folder (one sub-folder per class) with ``name="folder"`` and ``data_dir``.
- in-memory arrays: :func:`from_arrays`.

Images come out as float32 in [0, 1], resized to ``image_size`` and converted to ``channels``
(grayscale <-> RGB). That is the normalization every keras_cnn model is documented with.

Example:
    >>> from keras_cnn import data
    >>> train = data.load("digits", split="train", image_size=32, channels=1, batch_size=64)
"""

from __future__ import annotations

import difflib
import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
IDX_SETS = ("fashion_mnist", "mnist")
LOCAL_SOURCES = ("digits", "folder", *IDX_SETS)
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class Dataset(tuple):
    """``(images uint8 [N, H, W, C], labels int64 [N], class_names)`` with named fields."""

    images = property(lambda self: self[0])
    labels = property(lambda self: self[1])
    class_names = property(lambda self: self[2])


# --------------------------------------------------------------------------- sources
def load_digits_arrays(split="train", test_fraction=0.2, seed=0) -> Dataset:
    """scikit-learn's 8x8 digits as uint8 images (values 0-16 scaled to 0-255)."""
    from sklearn.datasets import load_digits

    _check_split(split, ("train", "test", "all"), "digits")
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype("uint8")[..., None]
    labels = digits.target.astype("int64")
    whole = Dataset((images, labels, tuple(str(i) for i in range(10))))
    return whole if split == "all" else _stratified_part(whole, split, test_fraction, seed)


def read_idx(path) -> np.ndarray:
    """Read one IDX file (MNIST format), gzip-compressed or not."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as error:  # a truncated or damaged .gz, an unreadable file
        raise ValueError(f"{path} cannot be read as an IDX file: {type(error).__name__}: {error}") from error
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtype_code, ndim = raw[2], raw[3]
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise ValueError(f"{path}: unknown IDX data type 0x{dtype_code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, {header} needed for {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    item = np.dtype(dtypes[dtype_code]).itemsize
    expected = int(np.prod(shape))
    if (len(raw) - header) != expected * item:
        raise ValueError(f"{path}: header says {shape} ({expected} values) but the file holds "
                         f"{(len(raw) - header) // item} values: truncated or corrupt")
    return np.frombuffer(raw, dtype=dtypes[dtype_code], offset=header).reshape(shape)


def _find_idx(directory: Path, prefix: str, kind: str):
    for suffix in ("", ".gz"):
        for sep in ("-", "."):
            candidate = directory / f"{prefix}-{kind}{sep}idx{1 if kind == 'labels' else 3}-ubyte{suffix}"
            if candidate.exists():
                return candidate
    return None


def load_idx_arrays(data_dir, split="train", name="fashion_mnist") -> Dataset:
    """MNIST-format IDX files from ``data_dir`` (``train-*`` and ``t10k-*``, ``.gz`` or not)."""
    _check_split(split, ("train", "test"), name)
    directory = Path(data_dir)
    prefix = "train" if split == "train" else "t10k"
    images_path, labels_path = _find_idx(directory, prefix, "images"), _find_idx(directory, prefix, "labels")
    if images_path is None or labels_path is None:
        raise ValueError(f"{name}: no IDX files for split {split!r} in {directory} "
                         f"(expected {prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz])")
    images, labels = read_idx(images_path), read_idx(labels_path).astype("int64")
    if images.ndim == 3:
        images = images[..., None]
    if len(images) != len(labels):
        raise ValueError(f"{name}: {len(images)} images but {len(labels)} labels in {directory}")
    classes = FASHION_MNIST_CLASSES if name == "fashion_mnist" else tuple(str(i) for i in range(10))
    return Dataset((images.astype("uint8"), labels, classes))


def load_folder_arrays(data_dir, image_size=None, split="all", test_fraction=0.2, seed=0) -> Dataset:
    """An image folder with one sub-folder per class, at least 2 (sorted names are the class names).

    ``split``: ``"all"``; ``"train"`` / ``"test"`` read ``data_dir/train`` / ``data_dir/test``
    when those exist, otherwise a fixed stratified split (``test_fraction``) of the whole folder.
    """

    root = Path(data_dir)
    if not root.is_dir():
        raise ValueError(f"folder: {root} is not a directory")
    _check_split(split, ("train", "test", "all"), "folder")
    if split != "all":
        if (root / split).is_dir():
            return load_folder_arrays(root / split, image_size)
        return _stratified_part(load_folder_arrays(root, image_size), split, test_fraction, seed)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    images, labels = [], []
    for index, cls in enumerate(classes):
        for file in sorted((root / cls).iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                img = read_image(file, "RGB")
                if image_size:
                    img = img.resize((image_size, image_size))
                images.append(np.asarray(img, dtype="uint8"))
                labels.append(index)
    if not images:
        raise ValueError(f"folder: no images ({', '.join(IMAGE_SUFFIXES)}) in class sub-folders of {root}")
    found = [classes[index] for index in sorted(set(labels))]
    if len(found) < 2:
        raise ValueError(f"folder: {root} holds images of one class only ({found[0]!r}); a classifier needs at "
                         "least 2 classes, one sub-folder of images each")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"folder: images in {root} have different sizes {sorted(shapes)[:3]}...; pass image_size")
    return Dataset((np.stack(images), np.asarray(labels, "int64"), tuple(classes)))


def read_image(path, mode="RGB"):
    """A PIL image of ``path`` in ``mode`` (``"RGB"`` or ``"L"``); a file that is not a readable image
    raises ``ValueError`` naming it."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            return opened.convert(mode)
    except (OSError, SyntaxError, ValueError) as error:  # PIL's UnidentifiedImageError is an OSError
        detail = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"{path} is not a readable image ({detail})") from error


def image_files(paths) -> list[Path]:
    """Image files from ``paths``: files as given, folders expanded to the images they hold (sorted)."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"{path} is a folder with no images ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"no such image file or folder: {path}")
    return files


def load_tfds_arrays(name, split="train", data_dir=None) -> Dataset:
    """A tensorflow-datasets image-classification set as arrays (tfds split syntax allowed)."""
    import tensorflow_datasets as tfds

    try:
        ds, info = tfds.load(name, split=split, as_supervised=True, with_info=True, data_dir=data_dir)
    except Exception as error:  # tfds raises many types; report one clear error
        raise ValueError(f"tfds could not load {name!r} split {split!r}: {error}") from error
    images, labels = [], []
    for image, label in tfds.as_numpy(ds):
        images.append(image)
        labels.append(label)
    if not images:
        raise ValueError(f"{name}: split {split!r} is empty")
    label_feature = info.features["label"]
    classes = tuple(label_feature.names) if hasattr(label_feature, "names") else ()
    return Dataset((np.stack(images).astype("uint8"), np.asarray(labels, "int64"), classes))


def load_arrays(name="digits", split="train", data_dir=None) -> Dataset:
    """Any source by name as uint8 arrays (see the module docstring)."""
    if name == "digits":
        return load_digits_arrays(split)
    if name == "folder":
        if data_dir is None:
            raise ValueError("folder: pass data_dir, the folder with one sub-folder per class")
        return load_folder_arrays(data_dir, split=split)
    if name in IDX_SETS:
        directory = data_dir or (DEBIAN_FASHION_MNIST if name == "fashion_mnist" else None)
        if directory and Path(directory).is_dir() and _find_idx(Path(directory), "train", "images"):
            return load_idx_arrays(directory, split, name)
    return _load_tfds_or_explain(name, split, data_dir)


def _load_tfds_or_explain(name, split, data_dir):
    import tensorflow_datasets as tfds

    known = set(tfds.list_builders())
    base = name.split(":", 1)[0].split("/", 1)[0]  # "NAME", "NAME:1.0.0", "NAME/CONFIG:1.0.0"
    if base not in known and not _prepared_tfds(name, data_dir):
        close = difflib.get_close_matches(base, sorted(known | set(LOCAL_SOURCES)), n=5, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        where = f"in {data_dir}" if data_dir else "in tensorflow-datasets' data folder (pass data_dir= / --data-dir)"
        raise ValueError(f"Unknown dataset {name!r}.{hint} Local sources: {', '.join(LOCAL_SOURCES)}; "
                         "any tensorflow-datasets image-classification name also works, and so does a data set "
                         f"prepared with tfds (download_and_prepare) {where}; none named {base!r} was found there.")
    return load_tfds_arrays(name, split, data_dir)


def _prepared_tfds(name, data_dir) -> bool:
    """Whether ``name`` is a data set tfds has already prepared in ``data_dir`` (or its default data
    folder): a user's own ``GeneratorBasedBuilder``, read from its files without its class (tfds'
    read-only builder)."""
    import tensorflow_datasets as tfds

    try:
        tfds.builder(name, data_dir=data_dir)
    except Exception:  # DatasetNotFoundError, or a folder tfds cannot read: not a prepared data set
        return False
    return True


def stratified_split(arrays: Dataset, test_fraction=0.2, seed=0) -> tuple[Dataset, Dataset]:
    """A fixed ``(train, test)`` split of ``arrays`` keeping class proportions (when every class has
    at least two images)."""
    from sklearn.model_selection import train_test_split

    stratify = arrays.labels if np.bincount(arrays.labels).min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(arrays.images, arrays.labels, test_size=test_fraction,
                                                        random_state=seed, stratify=stratify)
    return Dataset((x_train, y_train, arrays.class_names)), Dataset((x_test, y_test, arrays.class_names))


def _stratified_part(arrays: Dataset, split, test_fraction, seed) -> Dataset:
    train, test = stratified_split(arrays, test_fraction, seed)
    return train if split == "train" else test


def _check_split(split, allowed, name):
    if split not in allowed:
        raise ValueError(f"{name}: split must be one of {list(allowed)}, received {split!r}")


# --------------------------------------------------------------------------- pipeline
RESIZE_MODES = ("bilinear", "pad")


def prepare_images(images, image_size=None, channels=None, resize="bilinear"):
    """uint8/float images -> float32 [0, 1], brought to ``image_size`` and ``channels`` (tf ops).

    ``resize="pad"`` centres smaller images on a zero canvas instead of scaling them (LeCun et al.
    1998 put the 28x28 digits in a 32x32 field this way); larger images are still scaled down.
    """
    import tensorflow as tf

    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {list(RESIZE_MODES)}, received {resize!r}")
    x = tf.convert_to_tensor(images)
    x = tf.cast(x, tf.float32) / 255.0 if x.dtype == tf.uint8 else tf.cast(x, tf.float32)
    if image_size is not None:
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        height, width = x.shape[-3], x.shape[-2]
        if resize == "pad" and height <= size[0] and width <= size[1]:
            top, left = (size[0] - height) // 2, (size[1] - width) // 2
            x = tf.pad(x, [[0, 0], [top, size[0] - height - top], [left, size[1] - width - left], [0, 0]])
        elif (height, width) != size:
            x = tf.image.resize(x, size, method="bilinear")
    if channels is not None and x.shape[-1] != channels:
        if channels == 3 and x.shape[-1] == 1:
            x = tf.image.grayscale_to_rgb(x)
        elif channels == 1 and x.shape[-1] == 3:
            x = tf.image.rgb_to_grayscale(x)
        else:
            raise ValueError(f"cannot convert {x.shape[-1]} channels to {channels}")
    return x


class EpochCounter:
    """The epoch a :func:`from_arrays` pipeline draws its randomness for.

    Every random draw of such a pipeline (the order of the images, translation, flip, MixUp and
    CutMix) is a function of ``(seed, epoch, step)``: nothing carries over from one pass to the
    next, so any epoch can be drawn again exactly. Each new pass over the pipeline (a new iterator:
    ``model.fit`` makes one per epoch) reads the counter and advances it by one, so a pipeline used on
    its own is drawn afresh every epoch; a trainer that knows the epoch sets it first
    (:class:`keras_cnn.training.callbacks.EpochSeeds`), which is how a resumed run replays the
    epochs the uninterrupted run would have drawn.
    """

    def __init__(self, epoch: int = 0):
        import tensorflow as tf

        self.variable = tf.Variable(int(epoch), dtype=tf.int64, trainable=False, name="pipeline_epoch")

    def set(self, epoch: int) -> None:
        """The next pass over the pipeline draws epoch ``epoch`` (0-based, as ``model.fit`` counts)."""
        self.variable.assign(int(epoch))

    def take(self):
        """(Inside the pipeline) the epoch of the pass that starts now; advances the counter."""
        return self.variable.assign_add(1) - 1


def epoch_key(seed, epoch):
    """The stateless-RNG key of ``epoch`` of a pipeline seeded ``seed`` (TF's ``[2]`` int32 seed pair)."""
    import tensorflow as tf

    return tf.random.experimental.stateless_fold_in(tf.constant([int(seed), 0], tf.int64), epoch)


def _keyed_passes(epoch_batches, counter: EpochCounter, seed):
    """``epoch_batches(key)`` -> a dataset of one epoch's batches (``key``: that epoch's), for the epoch
    ``counter`` gives at the start of each pass; every batch comes with its own key ``(seed, epoch, step)``."""
    import tensorflow as tf

    def one_pass(epoch):
        key = epoch_key(seed, epoch)
        return epoch_batches(key).enumerate().map(
            lambda step, batch: (*batch, tf.random.experimental.stateless_fold_in(key, step)))

    return tf.data.Dataset.from_tensors(0).map(lambda _: counter.take()).flat_map(one_pass)


def from_arrays(images, labels, *, num_classes=None, image_size=None, channels=None, batch_size=32,
                shuffle=True, seed=0, augment=None, epoch=None, one_hot=False, drop_remainder=False,
                resize="bilinear"):
    """A batched, prefetched ``tf.data.Dataset`` of (float32 image, label) from arrays.

    Images are resized and channel-converted once and kept in memory; labels are integers, or
    one-hot float32 with ``one_hot=True`` (needs ``num_classes``; :class:`Augmentation`'s MixUp and
    CutMix need it). With ``shuffle`` the order of each pass, and the draws of ``augment`` (an
    :class:`Augmentation`, applied per batch), are functions of ``(seed, epoch, step)``, the
    epoch coming from ``epoch`` (an :class:`EpochCounter`; by default a new one that counts the
    passes). So two pipelines with one seed give the same batches, in parallel or not, and so do
    the processes of a data-parallel group, which each run this pipeline.
    """
    import tensorflow as tf

    images, labels = np.asarray(images), np.asarray(labels).astype("int64")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"images must be [N, H, W, C] with one label each; received images {images.shape}, "
                         f"labels {labels.shape}")
    if num_classes is not None and len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}) for num_classes={num_classes}; "
                         f"received labels from {labels.min()} to {labels.max()}")
    if one_hot and num_classes is None:
        raise ValueError("one_hot=True needs num_classes, received num_classes=None")
    if augment is not None and augment.mixes and not one_hot:
        raise ValueError("MixUp and CutMix mix one-hot labels: pass one_hot=True with num_classes")
    x = prepare_images(images, image_size, channels, resize)
    y = tf.one_hot(labels, num_classes) if one_hot else tf.constant(labels)
    count = len(labels)
    batches = count // batch_size if drop_remainder else -(-count // batch_size)
    if not shuffle and augment is None:  # nothing random: the same batches every pass
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size, drop_remainder=drop_remainder)
        return ds.prefetch(tf.data.AUTOTUNE)

    def epoch_batches(key):
        order = tf.random.experimental.stateless_shuffle(tf.range(count), seed=key) if shuffle else tf.range(count)
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=drop_remainder).map(
            lambda index: (tf.gather(x, index), tf.gather(y, index)))

    ds = _keyed_passes(epoch_batches, epoch or EpochCounter(), seed)
    ds = ds.map(augment or (lambda a, b, key: (a, b)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)


def mix_batches(dataset, num_classes, *, mixup=0.0, cutmix=0.0, seed=0, epoch=None):
    """One-hot labels for a pipeline of ``(image, integer label)`` batches, then (with ``mixup`` /
    ``cutmix``) :class:`Augmentation`'s MixUp / CutMix on every batch, keyed like :func:`from_arrays`
    (``epoch``: an :class:`EpochCounter`, by default one that counts the passes). Labels come out
    one-hot (soft where mixed), so train with categorical cross-entropy."""
    import tensorflow as tf

    if mixup < 0 or cutmix < 0:
        raise ValueError(f"mixup and cutmix must be >= 0, received mixup={mixup}, cutmix={cutmix}")
    dataset = dataset.map(lambda x, y: (x, tf.one_hot(tf.cast(y, tf.int32), num_classes)))
    if not (mixup or cutmix):
        return dataset
    mixing = Augmentation(translate=0.0, mixup=mixup, cutmix=cutmix)
    ds = _keyed_passes(lambda key: dataset, epoch or EpochCounter(), seed)
    return ds.map(mixing, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class Augmentation:
    """Random translation (Keras ``RandomTranslation``'s: a shift of up to ``translate`` x the size in
    each direction, bilinear, zero fill), horizontal ``flip``, then MixUp (Zhang et al. 2018,
    ``mixup``: the Beta parameter) and/or CutMix (Yun et al. 2019, ``cutmix``: the Beta parameter; with
    both, each batch gets one of the two at random, as in sec. 4), drawn per image.

    Called inside ``tf.data`` as ``augment(images, labels, key)``: every draw is a stateless function of
    ``key`` (TensorFlow's ``stateless_*`` ops), which :func:`from_arrays` makes from ``(seed, epoch,
    step)``. TensorFlow ops whatever the Keras backend (``tf.data`` runs on TensorFlow). MixUp and
    CutMix need one-hot labels.
    """

    def __init__(self, translate=0.1, flip=False, mixup=0.0, cutmix=0.0):
        for key, value in (("translate", translate), ("mixup", mixup), ("cutmix", cutmix)):
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"{key} must be a number >= 0, received {value!r}")
        self.translate, self.flip, self.mixup, self.cutmix = float(translate), bool(flip), float(mixup), \
            float(cutmix)

    @property
    def mixes(self) -> bool:
        return bool(self.mixup or self.cutmix)

    def __call__(self, images, labels, key):
        import tensorflow as tf

        keys = tf.random.experimental.stateless_split(key, 4)
        if self.translate:
            images = self._translate(images, keys[0])
        if self.flip:
            flipped = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], keys[1]) < 0.5
            images = tf.where(flipped, tf.reverse(images, axis=[2]), images)
        if self.mixup and self.cutmix:
            use_mixup = tf.random.stateless_uniform([], keys[2]) < 0.5
            images, labels = tf.cond(use_mixup, lambda: self._mixup(images, labels, keys[3]),
                                     lambda: self._cutmix(images, labels, keys[3]))
        elif self.mixup:
            images, labels = self._mixup(images, labels, keys[3])
        elif self.cutmix:
            images, labels = self._cutmix(images, labels, keys[3])
        return images, labels

    def _translate(self, images, key):
        import tensorflow as tf

        shape = tf.shape(images)
        size = tf.cast(tf.stack([shape[2], shape[1]]), tf.float32)  # (width, height)
        shift = tf.random.stateless_uniform([shape[0], 2], key, -self.translate, self.translate) * size
        zeros, ones = tf.zeros([shape[0], 1]), tf.ones([shape[0], 1])
        # output pixel (x, y) reads input (x - dx, y - dy)
        transforms = tf.concat([ones, zeros, -shift[:, :1], zeros, ones, -shift[:, 1:], zeros, zeros], axis=1)
        return tf.raw_ops.ImageProjectiveTransformV3(images=images, transforms=transforms, output_shape=shape[1:3],
                                                     fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")

    @staticmethod
    def _beta(alpha, shape, key):
        import tensorflow as tf

        first, second = tf.unstack(tf.random.experimental.stateless_split(key, 2))
        a = tf.random.stateless_gamma(shape, first, alpha)
        b = tf.random.stateless_gamma(shape, second, alpha)
        return a / (a + b)

    @staticmethod
    def _partners(images, key):
        import tensorflow as tf

        return tf.random.experimental.stateless_shuffle(tf.range(tf.shape(images)[0]), seed=key)

    def _mixup(self, images, labels, key):
        import tensorflow as tf

        keys = tf.random.experimental.stateless_split(key, 2)
        partner = self._partners(images, keys[0])
        weight = self._beta(self.mixup, [tf.shape(images)[0]], keys[1])
        mix = lambda t, w: w * t + (1.0 - w) * tf.gather(t, partner)  # noqa: E731
        return mix(images, tf.reshape(weight, [-1, 1, 1, 1])), mix(labels, weight[:, None])

    def _cutmix(self, images, labels, key):
        import tensorflow as tf

        keys = tf.random.experimental.stateless_split(key, 3)
        partner = self._partners(images, keys[0])
        shape = tf.shape(images)
        count, height, width = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
        ratio = tf.sqrt(1.0 - self._beta(self.cutmix, [count], keys[1]))  # the box's side over the image's
        centre = tf.random.stateless_uniform([count, 2], keys[2]) * tf.stack([height, width])
        half = tf.stack([ratio * height, ratio * width], axis=1) / 2.0
        low = tf.cast(tf.round(tf.maximum(centre - half, 0.0)), tf.int32)
        high = tf.cast(tf.round(tf.minimum(centre + half, tf.stack([height, width]))), tf.int32)
        rows, cols = tf.range(shape[1])[None, :], tf.range(shape[2])[None, :]
        inside_rows = (rows >= low[:, :1]) & (rows < high[:, :1])
        inside_cols = (cols >= low[:, 1:]) & (cols < high[:, 1:])
        box = inside_rows[:, :, None] & inside_cols[:, None, :]  # [N, H, W]
        images = tf.where(box[..., None], tf.gather(images, partner), images)
        kept = 1.0 - tf.reduce_mean(tf.cast(box, tf.float32), axis=[1, 2])  # the share of the image kept
        return images, kept[:, None] * labels + (1.0 - kept[:, None]) * tf.gather(labels, partner)


def load(name="digits", split="train", *, image_size=None, channels=None, batch_size=32, augment=False,
         shuffle=None, seed=0, data_dir=None, num_classes=None, flip=False):
    """A ready ``tf.data`` pipeline for ``name``/``split`` (see the module docstring).

    ``shuffle`` defaults to True for training splits; ``augment`` adds translation (and
    ``flip``) while training.
    """
    arrays = load_arrays(name, split, data_dir)
    training = str(split).startswith("train")
    augment_fn = Augmentation(flip=flip) if augment else None
    return from_arrays(arrays.images, arrays.labels, num_classes=num_classes, image_size=image_size,
                       channels=channels, batch_size=batch_size,
                       shuffle=training if shuffle is None else shuffle, seed=seed, augment=augment_fn)


def fashion_mnist_available(data_dir=None) -> bool:
    """Whether Fashion-MNIST IDX files are on this machine (Debian's dataset-fashion-mnist)."""
    directory = Path(data_dir or os.environ.get("KERAS_CNN_FASHION_MNIST", DEBIAN_FASHION_MNIST))
    return directory.is_dir() and _find_idx(directory, "train", "images") is not None


def center_crop(image, size: int, resize_size: int, crop_size: int, interpolation: str = "bilinear"):
    """A checkpoint's evaluation transform at the model's ``size``: the shorter side resized to
    ``size * resize_size / crop_size`` (256 for 224 in torchvision), then the central ``size`` x
    ``size`` square (a PIL image in, a PIL image out)."""
    from PIL import Image

    methods = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}
    shorter = max(size, round(size * resize_size / crop_size))
    width, height = image.size
    scale = shorter / min(width, height)
    image = image.resize((max(size, round(width * scale)), max(size, round(height * scale))),
                         methods.get(interpolation, Image.BILINEAR))
    left, top = (image.size[0] - size) // 2, (image.size[1] - size) // 2
    return image.crop((left, top, left + size, top + size))


def load_images(files, image_size, channels, resize="bilinear", data_size=None, checkpoint=None) -> np.ndarray:
    """Image files -> float32 [N, size, size, channels] in [0, 1], the models' input convention
    (``resize="pad"``: scaled to the training data's ``data_size``, then padded as in training;
    ``checkpoint``: a pretrained checkpoint's preprocessing, whose resize and center crop apply)."""
    arrays = []
    for file in image_files(files):
        image = read_image(file, "L" if channels == 1 else "RGB")
        if checkpoint and checkpoint.get("crop_size") and checkpoint.get("resize_size"):
            image = center_crop(image, image_size, checkpoint["resize_size"], checkpoint["crop_size"],
                                checkpoint.get("interpolation", "bilinear"))
        size = data_size if resize == "pad" and data_size else image_size
        arrays.append(np.asarray(image.resize((size, size)), "uint8").reshape(size, size, -1))
    return prepare_images(np.stack(arrays), image_size, channels, resize).numpy()
