"""Backbone features: ``keras_cnn.build(name, features=...)`` gives the maps by stride, for every name.

The maps equal timm's ``feature_info`` maps (``features_only=True``) for every weight pair timm has:
tests/test_weights_pairs.py checks them with the reference's own weights. Here: every registered
name's levels at its default input (size from the stride, channels as ``model_info`` lists them),
selection and errors, dynamic input sizes, ``model.fit`` on dict targets, the README's example in a
fresh process, and a multi-output SavedModel / float32 TFLite export checked against Keras.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn.analysis.model_table import FEATURES_CELL, REGENERATE, documented_rows, features_cell, row_cells
from keras_cnn.features import feature_model
from keras_cnn.registry import levels_of
from keras_cnn.training import optimizers

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = documented_rows(ROOT / "docs" / "MODELS.md")
#: nets that convolve or pool "valid" (no padding) somewhere: their maps are a little smaller than
#: ceil(input / stride); every other net pads "same" (or symmetrically, as PyTorch does) and halves exactly
VALID_PADDING = {"lenet", "lenet5", "alexnet", "alexnet_ungrouped", "alexnet_owt", "zfnet", "nin", "inception_v3",
                 "inception_v4", "inception_resnet_v1", "inception_resnet_v2", "xception", "squeezenet1_0",
                 "squeezenet1_1"}


@pytest.mark.parametrize("name", keras_cnn.list_models())
def test_every_name_gives_its_levels_at_their_strides(name):
    spec = keras_cnn.get_spec(name)
    height = spec.input_shape[0]
    with keras.StatelessScope(initialize_variables=False):  # shapes only: no weight values drawn
        body = keras_cnn.build(name, include_top=False)
        levels = levels_of(name, body)
        # what build(name, features=True) returns, on this body (building it anew took a second build of
        # every net; the public call runs in the selection, round-trip, fit and README tests below)
        model = feature_model(body, levels, name)
    assert list(model.output) == [level["level"] for level in levels] == model.output_names
    strides = [level["stride"] for level in levels]
    assert strides == sorted(set(strides)) and len(levels) >= 3, levels
    for level in levels:
        shape = model.output[level["level"]].shape
        assert level["level"] == f"P{int(math.log2(level['stride']))}"
        assert (shape[1], shape[3]) == (level["size"], level["channels"]), (level, shape)
        assert shape[1] == shape[2]  # square inputs
        expected = math.ceil(height / level["stride"])
        if name in VALID_PADDING:
            # (a map at stride >= the input, LeNet-5's 1x1 C5, has no lower bound)
            lower = math.ceil(height / (2 * level["stride"])) if 2 * level["stride"] <= height else 0
            assert lower < shape[1] <= expected, (level, shape)
        else:
            assert shape[1] == expected, (level, shape)
    # the deepest level reaches the body's own output: the levels cover the whole backbone
    assert body.output.shape[1] <= levels[-1]["size"]
    # docs/MODELS.md's "feature channels" cell (the rest of the row: tests/test_models.py)
    assert row_cells(DOCUMENTED[name])[FEATURES_CELL] == features_cell(levels), f"docs/MODELS.md is stale: {REGENERATE}"


def test_readme_example_in_a_fresh_process(tmp_path):
    """The README's backbone example (Darknet-53's three YOLOv3 scales at 416x416), run as written."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Backbone features", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("P")]
    assert lines == ["P3 (None, 52, 52, 256)", "P4 (None, 26, 26, 512)", "P5 (None, 13, 13, 1024)"], result.stdout


def test_model_info_lists_levels_as_feature_info_does():
    features = keras_cnn.model_info("resnet20")["features"]
    assert [(f["level"], f["layer"], f["channels"], f["stride"], f["size"]) for f in features] == [
        ("P0", "stage1_block3_out", 16, 1, 32), ("P1", "stage2_block3_out", 32, 2, 16),
        ("P2", "stage3_block3_out", 64, 4, 8)]


def test_selection_and_clear_errors():
    with keras.StatelessScope(initialize_variables=False):
        model = keras_cnn.build("resnet18", features=("P5", "P3"))
        assert list(model.output) == ["P3", "P5"]  # stride order, whatever the order asked
        assert keras_cnn.build("resnet18", features="P4").output_names == ["P4"]
        with pytest.raises(ValueError, match=r"unknown feature level\(s\) \['P6'\]; resnet18 has "
                                             r"\['P1', 'P2', 'P3', 'P4', 'P5'\]"):
            keras_cnn.build("resnet18", features=("P3", "P6"))
        with pytest.raises(ValueError, match=r"features must be True or level names .* received \[\]"):
            keras_cnn.build("resnet18", features=[])
        with pytest.raises(ValueError, match=r"features must be True or level names .* received 3"):
            keras_cnn.build("resnet18", features=3)
        with pytest.raises(ValueError, match="pooling='avg' does not apply to a features model"):
            keras_cnn.build("resnet18", features=True, pooling="avg")


def test_dynamic_input_size_and_keras_round_trip(tmp_path):
    model = keras_cnn.build("resnet18", features=True, input_shape=(None, None, 3))
    x = np.random.default_rng(0).uniform(0, 1, (1, 96, 64, 3)).astype("float32")
    maps = model(x, training=False)
    assert {k: tuple(v.shape[1:3]) for k, v in maps.items()} == {
        "P1": (48, 32), "P2": (24, 16), "P3": (12, 8), "P4": (6, 4), "P5": (3, 2)}
    model.save(tmp_path / "backbone.keras")
    loaded = keras.saving.load_model(tmp_path / "backbone.keras")
    again = loaded(x, training=False)
    for level in maps:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(maps[level]), keras.ops.convert_to_numpy(again[level]))


def test_features_train_with_fit_on_dict_targets():
    """A detector's neck trains the backbone through every level: here each level is regressed onto a
    fixed target map of real digits' model outputs' shape, one MSE loss per level, through ``fit``."""
    from keras_cnn import data

    keras.utils.set_random_seed(0)
    arrays = data.load_arrays("digits", "train")
    images = data.prepare_images(arrays.images[:64], image_size=(32, 32), channels=3).numpy()
    model = keras_cnn.build("resnet20", features=("P1", "P2"))
    rng = np.random.default_rng(1)
    targets = {level: rng.normal(0, 1, (64, *model.output[level].shape[1:])).astype("float32")
               for level in model.output}
    model.compile(optimizers.Adam(1e-2), loss={"P1": "mse", "P2": "mse"})
    history = model.fit(images, targets, batch_size=16, epochs=3, verbose=0).history
    assert {"loss", "P1_loss", "P2_loss"} <= set(history)
    assert history["loss"][-1] < history["loss"][0], history


@pytest.mark.slow
def test_features_export_to_savedmodel_and_float32_tflite(tmp_path):
    """Several outputs through both exports: the files keep every level by name, within 1e-4 of Keras
    (relative to each map's scale: untrained deep maps reach ~1e4). The float32 TFLite file is CSPDarknet-53's
    P3-P5 (YOLOv4's backbone); the SavedModel is ResNet-18's P2-P5: CSPDarknet-53's took 12 of this test's
    26 s (quiet) to write, load and run, and the export code is the same for any features model."""
    import tensorflow as tf

    from keras_cnn.deploy.export import export_saved_model, export_tflite
    from keras_cnn.deploy.tflite import run_tflite

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(5).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    model = keras_cnn.build("cspdarknet53", features=("P3", "P4", "P5"), input_shape=(64, 64, 3))
    report = export_tflite(model, tmp_path / "features.tflite")
    assert report["outputs"] == {"P3": [8, 8, 256], "P4": [4, 4, 512], "P5": [2, 2, 1024]}
    assert report["max_relative_diff_vs_keras"] <= 1e-4 and report["xnnpack_partitions"] == 1
    expected = {k: keras.ops.convert_to_numpy(v) for k, v in model(x, training=False).items()}
    from_tflite = run_tflite(tmp_path / "features.tflite", x)
    for level, value in expected.items():
        assert float(np.abs(from_tflite[level] - value).max()) <= 1e-4 * float(np.abs(value).max()), level

    model = keras_cnn.build("resnet18", features=("P2", "P3", "P4", "P5"), input_shape=(64, 64, 3))
    saved = export_saved_model(model, tmp_path / "features_savedmodel")
    assert saved["max_abs_diff_vs_keras"] <= 1e-4
    expected = {k: keras.ops.convert_to_numpy(v) for k, v in model(x, training=False).items()}
    loaded = tf.saved_model.load(str(tmp_path / "features_savedmodel"))  # kept: its functions need its variables
    from_saved = loaded.serving_float(tf.constant(x))
    assert sorted(from_saved) == ["P2", "P3", "P4", "P5"]
    for level, value in expected.items():
        scale = float(np.abs(value).max())
        assert float(np.abs(from_saved[level].numpy() - value).max()) <= 1e-4 * scale, level
