"""Deployment acceptance: every mobile-line net in all four TFLite modes, int8 accuracy on real
data, AlexNet's LRN in float32, and keras-cnn tflite-bench."""

import functools
import json

import keras
import numpy as np
import pytest
from conftest import _digits, randomize_batch_norm

import keras_cnn
from keras_cnn.cli import main
from keras_cnn.deploy.export import export_tflite, export_tflite_modes, run_tflite
from keras_cnn.deploy.tflite import tflite_latency

# Every mobile-line net of the issue (CI runs the slow ones too). One net per architecture is quick
# to run locally with -m "not slow"; the other ShuffleNet group counts / widths, squeezenet1_0,
# mobilenet_v3_large and RepVGG (8-28 s each beside another xdist worker on 2 cores, session 16) are marked slow.
ALL_MOBILE_NETS = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
                   *keras_cnn.list_models("shufflenet_v1_*"), *keras_cnn.list_models("shufflenet_v2_*"),
                   "squeezenet1_0", "squeezenet1_1", "repvgg_a0"]
ONE_PER_ARCHITECTURE = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v1_g3",
                        "shufflenet_v2_x0_5", "squeezenet1_1"]
# float16 and dynamic range are converted from the same traced graph as float32 (one converter call
# each, ~2 s on 2 cores from the frozen graph), so they run for one net per architecture (RepVGG's only
# variant included); every other width / group count gets float32 (XNNPACK, 1e-4 of Keras) and full-integer int8.
FOUR_MODES = [*ONE_PER_ARCHITECTURE, "repvgg_a0"]
# MobileNetV3's int8 file is converted from a second trace (h-swish rewritten for XNNPACK's int8 kernels,
# ~5-10 s more per net on 2 cores). Both V3 nets are exported to int8 (builtin ops only, else the export
# raises) and held to more than that elsewhere, each trained on digits (one XNNPACK partition up to the
# SOFTMAX, within 1 point of float top-1): Large in tests/test_int8.py, Small by `keras-cnn demo` in
# tests/test_cli_e2e.py, and Small untrained in test_mobilenet_v3_int8_is_one_xnnpack_partition_up_to_the_softmax;
# so here they get the float modes.
INT8_TESTED_ELSEWHERE = ["mobilenet_v3_small", "mobilenet_v3_large"]


def _modes(name):
    modes = (None, "float16", "dynamic", "int8") if name in FOUR_MODES else (None, "int8")
    return tuple(m for m in modes if not (m == "int8" and name in INT8_TESTED_ELSEWHERE))


@functools.lru_cache(maxsize=1)
def _calibration_images():
    """32 real digits images at 32x32x3 for the int8 conversions of the four-mode test: the exports there
    are held to builtin ops only, not to accuracy (the default calibrates on 200, one interpreter run
    per image); test_quantized_mobilenet_v2_keeps_accuracy_on_digits calibrates on 256 and checks accuracy."""
    from keras_cnn import data

    return data.prepare_images(_digits("train").images[:32], 32, 3).numpy()


@pytest.mark.parametrize("name", [n if n in ONE_PER_ARCHITECTURE else pytest.param(n, marks=pytest.mark.slow)
                                  for n in ALL_MOBILE_NETS])
def test_mobile_net_exports_in_all_four_modes(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras_cnn.build(name, num_classes=10, input_shape=(32, 32, 3))
    randomize_batch_norm(model, seed=3)  # folding must carry real statistics, not the identity
    modes = _modes(name)
    reports = export_tflite_modes(model, tmp_path, name=name, modes=modes, representative_data=_calibration_images())
    assert set(reports) == {mode or "float32" for mode in modes}
    for mode, report in reports.items():
        assert report["flex_ops"] == [] and report["dynamic_shape_ops"] == [], (mode, report["ops"])
        assert (tmp_path / f"{name}{'' if mode == 'float32' else '_' + mode}.tflite").is_file()
    float32 = reports["float32"]
    assert float32["xnnpack_delegated_fraction"] == 1.0, float32["ops_not_delegated"]
    assert float32["max_abs_diff_vs_keras"] <= 1e-4
    # The quantized modes are lossy: an untrained net's saturated softmax can flip on one random
    # image, so they report agreement here; test_quantized_mobilenet_v2_keeps_accuracy_on_digits
    # holds them to accuracy on real images.
    if "int8" in modes:
        assert 0.0 <= reports["int8"]["top1_agreement_vs_keras"] <= 1.0
    if name in FOUR_MODES:
        assert reports["float16"]["max_abs_diff_vs_keras"] <= 1e-2
        assert reports["float16"]["size_bytes"] < 0.6 * float32["size_bytes"]
        assert 0.0 <= reports["dynamic"]["top1_agreement_vs_keras"] <= 1.0
        assert reports["dynamic"]["size_bytes"] < 0.45 * float32["size_bytes"]  # int8 weights
    if name == "repvgg_a0":  # deployed: every RepVGG block is one 3x3 conv in the file
        assert "ADD" not in float32["ops"]


def _trained_on_digits(name, folder, *, image_size, epochs, **settings):
    """``name`` trained by ``keras_cnn.train`` on scikit-learn digits (grayscale, batch 32) into ``folder``.

    Returns (TrainResult, the 360 held-out images prepared at ``image_size``, their labels, the first
    256 training images at ``image_size`` for int8 calibration).
    """
    from keras_cnn import data

    result = keras_cnn.train(name, "digits", output=folder, epochs=epochs, batch_size=32, image_size=image_size,
                             channels=1, verbose=0, **settings)
    train_arrays, test_arrays = _digits("train"), _digits("test")
    test_images = data.prepare_images(test_arrays.images, image_size, 1).numpy()
    representative = data.prepare_images(train_arrays.images[:256], image_size, 1).numpy()
    return result, test_images, test_arrays.labels, representative


def _tflite_accuracies(model, folder, test_images, labels, representative, modes=("int8", "dynamic")):
    """The quantized ``modes`` of ``model`` (converted from one traced graph, verified on ``test_images``):
    ({mode: top-1 accuracy of the .tflite file on test_images}, {mode: export report})."""
    reports = export_tflite_modes(model, folder, name="net", modes=modes, representative_data=representative,
                                  verify_data=test_images)
    accuracies = {mode: float(np.mean(run_tflite(folder / f"net_{mode}.tflite", test_images).argmax(-1) == labels))
                  for mode in modes}
    return accuracies, reports


def test_quantized_mobilenet_v2_keeps_accuracy_on_digits(tmp_path):
    """MobileNet-v2 (alpha 0.35, 64x64) trained on digits: int8 and dynamic range within 2 points
    of float on the 360 held-out images.

    5 epochs (the first one is mostly tracing): float top-1 ~0.94 (8 epochs gave ~0.96, 4 ~0.89),
    well above the 0.8 floor, so a 2-point int8 loss (7 images) is a real bar; 48x48 was tried and
    only reached ~0.84 in 5 epochs.
    """
    result, test_images, labels, representative = _trained_on_digits(
        "mobilenet_v2", tmp_path / "run", image_size=64, epochs=5, learning_rate=3e-3, label_smoothing=0.0,
        model_options={"alpha": 0.35})
    float_accuracy = result.summary["test_top1"]
    assert float_accuracy > 0.8
    accuracies, reports = _tflite_accuracies(result.model, tmp_path, test_images, labels, representative)
    for mode in ("int8", "dynamic"):
        assert accuracies[mode] >= float_accuracy - 0.02, (mode, float_accuracy, accuracies)
    assert reports["dynamic"]["top1_agreement_vs_keras"] >= 0.95, reports["dynamic"]["top1_agreement_vs_keras"]


@pytest.mark.slow
def test_alexnet_with_lrn_exports_in_float32(tmp_path):
    # The convolutional body, where both LRN layers are, average-pooled: with the FC head the model has
    # 57M parameters, 96% of them in plain Dense layers (exported by every other float32 test), and the
    # conversion took ~10x longer. The pooled features are held to 1e-4 of Keras as probabilities are.
    model = keras_cnn.build("alexnet", include_top=False, pooling="avg", input_shape=(67, 67, 3))
    report = export_tflite(model, tmp_path / "alexnet.tflite")
    assert report["ops"].get("LOCAL_RESPONSE_NORMALIZATION") == 2  # the builtin LRN kernel, twice
    assert report["flex_ops"] == [] and report["max_abs_diff_vs_keras"] <= 1e-4
    assert "LOCAL_RESPONSE_NORMALIZATION" in report["ops_not_delegated"]  # XNNPACK has no LRN: said in the report
    assert 0.0 < report["xnnpack_delegated_fraction"] < 1.0


def test_tflite_bench_cli(tmp_path, capsys):
    model = keras_cnn.build("squeezenet1_1", num_classes=10, input_shape=(32, 32, 3))
    path = tmp_path / "s.tflite"
    export_tflite(model, path)
    timing = tflite_latency(path, threads=(1, 2), runs=5, warmup=2)
    assert set(timing) == {"1_thread", "2_threads"} and all(t["median_ms"] > 0 for t in timing.values())
    assert main(["tflite-bench", str(path), "--runs", "5", "--warmup", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["1_thread"]["runs"] == 5 and result["2_threads"]["xnnpack"] is True
    assert main(["tflite-bench", str(tmp_path / "missing.tflite")]) == 2
    for kwargs, message in (({"runs": 0}, r"runs must be an integer >= 1, received 0"),
                            ({"warmup": -1}, r"warmup must be an integer >= 0, received -1"),
                            ({"threads": (0,)}, r"threads must be thread counts >= 1, received \(0,\)")):
        with pytest.raises(ValueError, match=message):
            tflite_latency(path, **kwargs)
