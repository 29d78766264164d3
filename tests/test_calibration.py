"""Right answers from the deployment paths (issue #33): int8 files calibrated on the user's domain, the
checkpoint's normalization kept by ``convert --output FILE.weights.h5``, and export checks that can fail.

The real-photo measurement (a real ImageNet MobileNetV2 on real ImageNet photos) is
benchmarks/int8_calibration_real.py; its data lives outside the repository, so no test needs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import CliProcess
from test_cli_e2e import printed_json, run

import keras_cnn
from keras_cnn import data
from keras_cnn.deploy import calibration
from keras_cnn.deploy import export as export_module
from keras_cnn.deploy.export import ExportError, export_tflite, run_tflite


def _write_photos(folder, count=6, size=(40, 30)):
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype="uint8")).save(folder / f"p{i}.png")
    return folder


# --------------------------------------------------------------------------- calibration sources
def test_bundled_photos_are_reproducible_and_each_has_its_licence():
    first, again = calibration.bundled_photos(48, 3, count=12), calibration.bundled_photos(48, 3, count=12)
    assert first.shape == (12, 48, 48, 3) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert 0.0 <= first.min() and first.max() <= 1.0 and first.std() > 0.1  # photos, not a flat field
    assert not np.array_equal(first[0], first[len(calibration.photo_files())])  # another crop of the same photo
    assert calibration.bundled_photos(32, 1, count=3).shape == (3, 32, 32, 1)
    readme = (calibration.PHOTO_FOLDER / "README.md").read_text()
    assert len(calibration.photo_files()) == 10
    for file in calibration.photo_files():
        row = next(line for line in readme.splitlines() if line.startswith(f"| {file.name} |"))
        assert "public domain" in row or "CC0" in row or "No known copyright" in row, row


def test_calibration_sources_resolve_or_say_what_is_allowed(tmp_path):
    shape = (1, 32, 32, 3)
    photos = _write_photos(tmp_path / "photos")
    found = calibration.resolve(str(photos), shape, count=4)
    assert found.images.shape == (4, 32, 32, 3) and found.description == f"4 images from {photos}"
    digits = calibration.resolve("digits", (1, 16, 16, 1), count=5)
    assert digits.images.shape == (5, 16, 16, 1) and "digits train split" in digits.description
    bundled = calibration.resolve(None, shape, count=3)
    assert bundled.images.shape == (3, 32, 32, 3) and bundled.description.startswith(calibration.BUNDLED)
    given = calibration.resolve(np.zeros((7, 32, 32, 3)), shape)
    assert len(given.images) == 7 and given.description == "7 images given by the caller"
    with pytest.raises(ValueError, match=r"'digitz'.*Did you mean: digits"):
        calibration.resolve("digitz", shape)
    with pytest.raises(ValueError, match=r"\[N, 32, 32, 3\].*\(4, 8, 8, 3\)"):
        calibration.resolve(np.zeros((4, 8, 8, 3)), shape)
    with pytest.raises(ValueError, match="positive integer, received 0"):
        calibration.resolve(None, shape, count=0)
    with pytest.raises(ValueError, match="no such image file or folder: photos/missing"):
        calibration.resolve("photos/missing", shape)


def test_export_calibrates_on_what_the_user_names(tmp_path):
    """``keras-cnn export ... --quantize int8 --calibration-data FOLDER_OR_DATASET`` as a user runs it; without
    it a net with no run of its own is calibrated on the bundled photos (never digits), and the report says so."""
    _write_photos(tmp_path / "photos")
    common = ("export", "mobilenet_v3_small", "--input-shape", "32,32,3", "--num-classes", "10", "--quantize", "int8")
    default = run(tmp_path, *common, "--output", "default")  # its own process: the warning a user sees
    quantization = printed_json(default.stdout)["quantization"]
    assert quantization["representative_data"].startswith("bundled photos: 200 random crops"), quantization
    assert "keras_cnn: int8 calibrated on the 10 bundled photos" in default.stderr, default.stderr[-2000:]
    cli = CliProcess(tmp_path)  # the variants in one more process
    try:
        folder, digits = (cli([*common, *extra]) for extra in (
            ("--calibration-data", "photos", "--calibration-count", "4", "--output", "folder"),
            ("--calibration-data", "digits", "--output", "digits")))
        refused = cli(["export", "mobilenet_v3_small", "--quantize", "float16", "--calibration-data", "photos",
                       "--output", "refused"])
    finally:
        cli.close()
    assert folder.returncode == 0 and digits.returncode == 0, (folder.stderr[-2000:], digits.stderr[-2000:])
    report = printed_json(folder.stdout)
    assert report["quantization"]["calibration_images"] == 4, report["quantization"]
    assert report["quantization"]["representative_data"] == "4 images from photos", report["quantization"]
    assert report["verification"]["inputs"] == "images given by the caller", report["verification"]
    quantization = printed_json(digits.stdout)["quantization"]
    assert quantization["representative_data"] == "200 images of the digits train split (the first 200)"
    assert refused.returncode == 2 and refused.stderr.strip().splitlines()[-1].startswith(
        "keras-cnn: error: --calibration-data and --calibration-count apply to --format tflite --quantize int8"), \
        refused.stderr
    assert not (tmp_path / "refused").exists()


@pytest.mark.slow
def test_calibration_on_the_wrong_domain_costs_accuracy_on_fashion_mnist(tmp_path):
    """The acceptance check of issue #33 on real data: ResNet-20 trained on Fashion-MNIST (2 epochs, the first
    10,000 training images), exported int8 by the CLI calibrated on digits and on Fashion-MNIST, both files
    scored on the 10,000 test images. Measured here (seed 0): float 0.7977, digits-calibrated 0.7736 (-2.4
    points), --calibration-data fashion_mnist 0.7966 (-0.1). The training is most of the time, and it stays: on
    the first 5,000 images (2 epochs) seed 0 still gave float 0.756, digits 0.715, fashion_mnist 0.756, but
    seed 1 float 0.738, digits 0.733, fashion_mnist 0.738 (-0.5 points, under the 1 point asserted); one epoch
    of 10,000 gave float 0.608, under 0.7."""
    if not data.fashion_mnist_available():
        if os.environ.get("KERAS_CNN_EXPECT_FASHION_MNIST"):
            pytest.fail(".ci/run saw Debian's dataset-fashion-mnist, but keras_cnn.data did not find it")
        pytest.skip("Debian's dataset-fashion-mnist is not installed on this machine")
    summary = json.loads(run(tmp_path, "train", "resnet20", "--dataset", "fashion_mnist", "--epochs", 2, "--limit",
                             10000, "--output", "r20", "--verbose", 0).stdout.strip().splitlines()[-1])
    float_top1 = summary["test_top1"]
    assert summary["test_images"] == 10000 and float_top1 > 0.7, summary
    test = data.load_arrays("fashion_mnist", "test")
    images = data.prepare_images(test.images, 28, 1).numpy()
    top1 = {}
    for source in ("digits", "fashion_mnist"):
        report = printed_json(run(tmp_path, "export", "r20", "--quantize", "int8", "--calibration-data", source,
                                  "--output", source).stdout)
        assert report["quantization"]["representative_data"].endswith(f"{source} train split (the first 200)")
        top1[source] = float(np.mean(run_tflite(tmp_path / source / "r20_int8.tflite", images).argmax(-1) ==
                                     test.labels))
    assert top1["fashion_mnist"] >= float_top1 - 0.01, (float_top1, top1)
    assert top1["digits"] <= top1["fashion_mnist"] - 0.01, (float_top1, top1)  # the wrong domain costs accuracy


# --------------------------------------------------------------------------- verification
def test_export_verification_compares_logits_when_the_probabilities_are_uniform(tmp_path, monkeypatch):
    """A random MobileNetV3-Small gives 0.1 for every class: its probabilities agree with any file of the right
    shape. The check then compares the logits (read from the file), and a file whose logits are wrong fails."""
    model = keras_cnn.build("mobilenet_v3_small", num_classes=10, input_shape=(32, 32, 3))
    report = export_tflite(model, tmp_path / "v3.tflite")
    check = report["verification"]
    assert check["output_spread"] < 1e-4 and check["conclusive"] and check["images"] == 8, check
    assert check["compared"].startswith("the logits") and check["logits_relative_diff"] < 1e-4, check
    real = export_module.softmax_inputs
    monkeypatch.setattr(export_module, "softmax_inputs", lambda flatbuffer, x: real(flatbuffer, x)[:, ::-1])
    with pytest.raises(ExportError, match="logits differ from Keras'"):
        export_tflite(model, tmp_path / "wrong.tflite")
    assert not (tmp_path / "wrong.tflite").exists()
    lenet = export_tflite(keras_cnn.build("lenet5", head="softmax"), tmp_path / "lenet.tflite")["verification"]
    assert lenet["compared"] == "the outputs (class probabilities)" and lenet["output_spread"] > 1e-4, lenet


# --------------------------------------------------------------------------- .weights.h5 from convert
@pytest.mark.slow
def test_a_converted_weights_file_keeps_the_checkpoint_normalization(tmp_path):
    """``keras-cnn convert resnet18 FILE.pth --output r18.weights.h5``, then in a new process
    ``build("resnet18", weights="r18.weights.h5")`` gives the checkpoint's answer on [0, 1] images (its
    normalization inside), and ``keras-cnn export`` of it reports the checkpoint and ImageNet's class names."""
    torch = pytest.importorskip("torch", reason="the test extra installs torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    report = printed_json(run(tmp_path, "convert", "resnet18", "r18.pth", "--output", "r18.weights.h5").stdout)
    assert report["checkpoint"]["mean"] == [0.485, 0.456, 0.406], report
    script = """
import numpy as np, keras_cnn
from keras_cnn.deploy.export import checkpoint_preprocessing
x = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
from_h5 = keras_cnn.build("resnet18", weights="r18.weights.h5", input_shape=(64, 64, 3))
from_pth = keras_cnn.build("resnet18", weights="r18.pth", input_shape=(64, 64, 3))
print("normalization", checkpoint_preprocessing(from_h5)["std"], checkpoint_preprocessing(from_h5)["crop_size"])
print("diff", float(np.abs(from_h5.predict(x, verbose=0) - from_pth.predict(x, verbose=0)).max()))
try:
    keras_cnn.build("resnet34", weights="r18.weights.h5")
except ValueError as error:
    print("refused", error)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["normalization"] == "[0.229, 0.224, 0.225] 224", result.stdout
    assert float(lines["diff"]) < 1e-6, result.stdout
    assert "holds the weights of 'resnet18'" in lines["refused"], result.stdout
    exported = printed_json(run(tmp_path, "export", "resnet18", "--weights", "r18.weights.h5", "--input-shape",
                                "64,64,3", "--output", "out").stdout)
    assert exported["input"]["checkpoint"]["mean"] == [0.485, 0.456, 0.406], exported["input"]
    assert len(exported["class_names"]) == 1000 and exported["class_names"][0] == "tench", exported["class_names"][:3]
