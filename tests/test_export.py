"""Export: SavedModel signatures, TFLite modes with builtin ops only, reports, atomic writes."""

import json

import keras
import numpy as np
import pytest
from conftest import randomize_batch_norm

import keras_cnn
from keras_cnn.deploy.export import ExportError, export_saved_model, export_tflite, run_tflite


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(0)
    model = keras_cnn.build("mobilenet_v3_small", num_classes=10, input_shape=(32, 32, 3))
    randomize_batch_norm(model, seed=1)
    return model


def test_tflite_float32_matches_keras_and_runs_on_xnnpack(small_model, tmp_path):
    path = tmp_path / "m.tflite"
    report = export_tflite(small_model, path)
    assert path.exists() and json.loads((tmp_path / "m.tflite.json").read_text())["quantize"] == "float32"
    assert report["flex_ops"] == [] and report["dynamic_shape_ops"] == []
    assert report["xnnpack_delegated_fraction"] == 1.0 and report["ops_not_delegated"] == []
    assert "HARD_SWISH" in report["ops"] and report["max_abs_diff_vs_keras"] <= 1e-4
    x = np.random.default_rng(5).uniform(0, 1, (3, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(run_tflite(path, x), small_model.predict(x, verbose=0), atol=1e-4)


def test_tflite_int8_reports_top1_agreement(small_model, tmp_path):
    report = export_tflite(small_model, tmp_path / "m_int8.tflite", quantize="int8")
    assert 0.0 <= report["top1_agreement_vs_keras"] <= 1.0 and report["quantize"] == "int8"
    assert report["flex_ops"] == [] and report["size_bytes"] < (tmp_path / "m_int8.tflite").stat().st_size + 1


def test_dynamic_range_reports_agreement_and_holds_a_given_tolerance(tmp_path):
    # LeNet (d2l.ai, 28x28x1): two conversions of it take ~3 s where MobileNet-v3 took ~15 s, and its large
    # Dense kernels are int8-quantized, so the difference to Keras is well above zero (~1e-4; that
    # of MobileNet-v3 at 32x32 is ~1e-8). MobileNet-v3's dynamic file is checked in test_deploy.py.
    keras.utils.set_random_seed(0)
    model = keras_cnn.build("lenet", num_classes=10)
    x = np.random.default_rng(2).uniform(0, 1, (8, *model.inputs[0].shape[1:])).astype("float32")
    report = export_tflite(model, tmp_path / "m_dynamic.tflite", quantize="dynamic", verify_data=x)
    assert 0.0 <= report["top1_agreement_vs_keras"] <= 1.0 and report["max_abs_diff_vs_keras"] > 0.0
    too_tight = report["max_abs_diff_vs_keras"] / 2
    with pytest.raises(ExportError, match="differ from Keras"):
        export_tflite(model, tmp_path / "strict.tflite", quantize="dynamic", verify_data=x, tolerance=too_tight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_dynamic.tflite", "m_dynamic.tflite.json"]


def test_saved_model_signatures_match_keras(small_model, tmp_path):
    import tensorflow as tf

    report = export_saved_model(small_model, tmp_path / "sm", class_names=[str(i) for i in range(10)])
    assert report["max_abs_diff_vs_keras"] <= 1e-4
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    probabilities = loaded.signatures["serving_default"](images=tf.constant(images))
    out = list(probabilities.values())[0].numpy()
    np.testing.assert_allclose(out, small_model.predict(images.astype("float32") / 255, verbose=0), atol=1e-4)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)


@keras.saving.register_keras_serializable(package="keras_cnn_tests")
class MatrixInverse(keras.layers.Layer):
    """TFLite has no builtin MatrixInverse kernel (it would need a Flex op): conversion must fail."""

    def call(self, x):
        import tensorflow as tf

        return tf.linalg.inv(x[..., 0] + 8.0 * tf.eye(8))[..., None]


def test_failed_export_raises_and_leaves_nothing(tmp_path):
    inputs = keras.Input((8, 8, 1))
    x = MatrixInverse()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x)))
    with pytest.raises(ExportError, match="builtin ops only"):
        export_tflite(model, tmp_path / "bad.tflite")
    assert list(tmp_path.iterdir()) == []


def test_bad_quantize_mode(tmp_path):
    with pytest.raises(ValueError, match=r"quantize must be one of \[None, 'float16', 'dynamic', 'int8'\]"):
        export_tflite(keras_cnn.build("lenet"), tmp_path / "never.tflite", quantize="int4")
    assert list(tmp_path.iterdir()) == []


def test_cli_export_from_keras_file(small_model, tmp_path):
    from keras_cnn.cli import main

    small_model.save(tmp_path / "net.keras")
    assert main(["export", str(tmp_path / "net.keras"), "--format", "tflite", "--output", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "net.tflite").exists() and (tmp_path / "out" / "net.tflite.json").exists()
    assert main(["export", str(tmp_path / "missing.keras")]) == 2


def test_exported_files_get_normal_permissions(tmp_path):
    import os

    model = keras_cnn.build("lenet", num_classes=10)  # the file mode does not depend on the net: the smallest
    mask = os.umask(0o022)
    try:
        export_tflite(model, tmp_path / "p.tflite", verify=False)
    finally:
        os.umask(mask)
    assert (tmp_path / "p.tflite").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "p.tflite.json").stat().st_mode & 0o777 == 0o644
