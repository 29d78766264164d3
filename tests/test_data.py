"""Every data source: digits, IDX files, image folders, NumPy arrays, tfds (mock_data), errors."""

import gzip
import struct

import numpy as np
import pytest

from keras_cnn import data


def write_idx(path, array):
    codes = {np.dtype("uint8"): 0x08}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype], array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def test_digits_split_is_fixed_stratified_and_scaled():
    train, test = data.load_arrays("digits", "train"), data.load_arrays("digits", "test")
    assert train.images.shape == (1437, 8, 8, 1) and test.images.shape == (360, 8, 8, 1)
    assert train.images.dtype == np.uint8 and train.images.max() == 255
    assert set(np.unique(test.labels)) == set(range(10))
    np.testing.assert_array_equal(data.load_arrays("digits", "test").labels, test.labels)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_files_roundtrip(tmp_path, suffix, rng):
    images = rng.integers(0, 256, (12, 28, 28)).astype("uint8")
    labels = rng.integers(0, 10, 12).astype("uint8")
    for split in ("train", "t10k"):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte{suffix}", labels)
    arrays = data.load_arrays("fashion_mnist", "test", data_dir=tmp_path)
    np.testing.assert_array_equal(arrays.images[..., 0], images)
    np.testing.assert_array_equal(arrays.labels, labels)
    assert arrays.class_names[0] == "T-shirt/top"
    ds = data.load("mnist", "train", data_dir=tmp_path, image_size=32, channels=3, batch_size=5)
    x, y = next(iter(ds))
    assert x.shape == (5, 32, 32, 3) and float(x.numpy().max()) <= 1.0


def test_idx_bad_magic(tmp_path):
    (tmp_path / "x").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "x")


def test_image_folder(tmp_path):
    from PIL import Image

    for index, cls in enumerate(["cat", "dog"]):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((10, 10, 3), 40 * (index + i), "uint8")).save(tmp_path / cls / f"{i}.png")
    arrays = data.load_arrays("folder", "all", data_dir=tmp_path)
    assert arrays.images.shape == (6, 10, 10, 3) and arrays.class_names == ("cat", "dog")
    assert list(arrays.labels) == [0, 0, 0, 1, 1, 1]
    train, test = (data.load_arrays("folder", split, data_dir=tmp_path) for split in ("train", "test"))
    assert len(train.labels) + len(test.labels) == 6 and len(test.labels) == 2  # fixed 80/20 split
    assert sorted(np.concatenate([train.images, test.images]).reshape(6, -1)[:, 0]) == sorted(
        arrays.images.reshape(6, -1)[:, 0])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        data.load_arrays("folder", data_dir=tmp_path / "empty")
    (tmp_path / "one" / "cat").mkdir(parents=True)
    (tmp_path / "one" / "dog").mkdir()  # a class folder without images is no class
    Image.fromarray(np.zeros((10, 10, 3), "uint8")).save(tmp_path / "one" / "cat" / "0.png")
    with pytest.raises(ValueError, match=r"one.* holds images of one class only \('cat'\).*at least 2 classes"):
        data.load_arrays("folder", "train", data_dir=tmp_path / "one")


def test_numpy_arrays_pipeline_and_label_check(rng):
    images = rng.integers(0, 256, (10, 16, 16, 3)).astype("uint8")
    ds = data.from_arrays(images, np.arange(10) % 4, num_classes=4, image_size=20, channels=1, batch_size=4)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2] and batches[0][0].shape[1:] == (20, 20, 1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        data.from_arrays(images, np.arange(10), num_classes=3)


def test_tfds_path_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=16):
        arrays = data.load_arrays("mnist", "train[:50%]")
        ds = data.load("mnist", "test", image_size=32, channels=3, batch_size=8)
    assert arrays.images.shape[1:] == (28, 28, 1) and len(arrays.class_names) == 10
    x, y = next(iter(ds))
    assert x.shape == (8, 32, 32, 3)


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match=r"Unknown dataset 'digitz'.*Did you mean: digits"):
        data.load_arrays("digitz")
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'test', 'all'\]"):
        data.load_arrays("digits", "validation")


def test_fashion_mnist_found_in_debian_location():
    import os

    if not data.fashion_mnist_available():
        if os.environ.get("KERAS_CNN_EXPECT_FASHION_MNIST"):
            pytest.fail(".ci/run saw Debian's dataset-fashion-mnist, but keras_cnn.data did not find it")
        pytest.skip("Debian's dataset-fashion-mnist is not installed on this machine")
    test = data.load_arrays("fashion_mnist", "test")
    assert test.images.shape == (10_000, 28, 28, 1) and np.bincount(test.labels).tolist() == [1000] * 10


def test_folder_with_train_and_test_subfolders(tmp_path):
    from PIL import Image

    for split, count in (("train", 4), ("test", 2)):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(np.zeros((6, 6, 3), "uint8")).save(tmp_path / split / cls / f"{i}.png")
    assert len(data.load_arrays("folder", "train", data_dir=tmp_path).labels) == 8
    assert len(data.load_arrays("folder", "test", data_dir=tmp_path).labels) == 4


@pytest.mark.parametrize("mixup, cutmix", [(0.0, 0.0), (0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_mixup_and_cutmix_give_soft_one_hot_labels(rng, mixup, cutmix):
    images = rng.random((64, 16, 16, 1)).astype("float32")
    ds = data.from_arrays(images, np.arange(64) % 8, num_classes=8, batch_size=32, shuffle=False)
    x, y = next(iter(data.mix_batches(ds, 8, mixup=mixup, cutmix=cutmix, seed=1)))
    y = y.numpy()
    assert x.shape == (32, 16, 16, 1) and y.shape == (32, 8)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)
    if mixup or cutmix:
        assert (y.max(-1) < 0.999).mean() > 0.5  # most rows are mixtures of two classes
    else:
        np.testing.assert_array_equal(y.argmax(-1), np.arange(32) % 8)
        assert set(np.unique(y)) == {0.0, 1.0}
    with pytest.raises(ValueError, match="mixup and cutmix must be >= 0"):
        data.mix_batches(ds, 8, mixup=-1)


def _passes(ds, count):
    return [[(x.numpy(), y.numpy()) for x, y in ds] for _ in range(count)]


def test_every_draw_of_a_pass_is_a_function_of_seed_epoch_and_step(rng):
    """Two pipelines with one seed give the same batches pass after pass; each pass is drawn afresh; a
    pipeline whose counter is set to epoch e replays the e-th pass exactly (what a resumed run does)."""
    images, labels = rng.random((40, 12, 12, 1)).astype("float32"), np.arange(40) % 4

    def pipeline(counter=None):
        return data.from_arrays(images, labels, num_classes=4, batch_size=8, seed=3, one_hot=True, epoch=counter,
                                augment=data.Augmentation(translate=0.2, flip=True, mixup=0.4, cutmix=1.0))

    first, second = _passes(pipeline(), 3), _passes(pipeline(), 3)
    for a, b in zip(first, second):
        for (xa, ya), (xb, yb) in zip(a, b):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(first[0][0][0], first[1][0][0]), "the second pass repeated the first"
    counter = data.EpochCounter()
    replay = pipeline(counter)
    counter.set(2)
    for (xa, ya), (xb, yb) in zip(first[2], _passes(replay, 1)[0]):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert pipeline().cardinality() == 5


def test_shuffled_passes_hold_every_image_once(rng):
    images = np.arange(30, dtype="float32").reshape(30, 1, 1, 1) * np.ones((1, 4, 4, 1), "float32")
    for batches in _passes(data.from_arrays(images, np.zeros(30), batch_size=7, seed=1), 2):
        seen = np.concatenate([x[:, 0, 0, 0] for x, _ in batches])
        assert sorted(seen.tolist()) == list(range(30)) and seen.tolist() != list(range(30))


def test_augmentation_translates_flips_and_cuts_as_documented():
    import tensorflow as tf

    image = np.zeros((1, 8, 8, 1), "float32")
    image[0, 2, 5, 0] = 1.0
    key = tf.constant([1, 2], tf.int64)
    unchanged = data.Augmentation(translate=0.0)(tf.constant(image), tf.zeros([1, 2]), key)[0].numpy()
    np.testing.assert_array_equal(unchanged, image)
    # a flip mirrors the columns of the images it picks, and only those
    batch = np.repeat(image, 64, axis=0)
    flipped = data.Augmentation(translate=0.0, flip=True)(tf.constant(batch), tf.zeros([64, 2]), key)[0].numpy()
    mirrored = np.all(flipped == batch[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(mirrored | np.all(flipped == batch, axis=(1, 2, 3))) and 10 < mirrored.sum() < 54
    # translation moves the pixel by at most translate x size, keeps its mass when it stays inside
    moved = data.Augmentation(translate=0.25)(tf.constant(batch), tf.zeros([64, 2]), key)[0].numpy()
    rows, cols = np.nonzero(moved.sum(0)[..., 0])
    assert np.abs(rows - 2).max() <= 2 and np.abs(cols - 5).max() <= 3
    # CutMix: each label keeps the share of the image's own pixels
    halves = np.concatenate([np.zeros((16, 8, 8, 1)), np.ones((16, 8, 8, 1))]).astype("float32")
    labels = np.repeat(np.eye(2, dtype="float32"), 16, axis=0)
    x, y = data.Augmentation(translate=0.0, cutmix=1.0)(tf.constant(halves), tf.constant(labels), key)
    x, y = x.numpy(), y.numpy()
    np.testing.assert_allclose(y[:, 1], x.mean(axis=(1, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-6)
