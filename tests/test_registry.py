"""The public API contract: names, patterns, info, and clear errors for bad input."""

from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import trainable_count

import keras_cnn
from keras_cnn.registry import natural_key

#: The mission's canonical names (a copy of the project's model list; one name a line, ``#`` comments).
CANONICAL = Path(__file__).with_name("canonical_models.txt")


def test_every_canonical_name_is_registered():
    names = [line.strip() for line in CANONICAL.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(names) == 79
    missing = sorted(set(names) - set(keras_cnn.list_models()))
    assert not missing, missing


def test_list_models_sorted_and_pattern():
    names = keras_cnn.list_models()
    assert names == sorted(names, key=natural_key) and len(names) == len(set(names))
    assert names.index("resnet18") < names.index("resnet34") < names.index("resnet101")  # natural order
    assert keras_cnn.list_models("lenet*") == ["lenet", "lenet5"]
    assert keras_cnn.list_models("no_such_*") == []


def test_model_info_fields():
    info = keras_cnn.model_info("lenet5")
    assert info["family"] == "lenet" and info["year"] == 1998
    assert info["reference_params"] == 60_000 and info["input_shape"] == (32, 32, 1)
    assert info["url"].startswith("http") and info["paper"]
    assert "head" in info["options"]


def test_lenet_reference_counts():
    assert trainable_count(keras_cnn.build("lenet5")) == 60_000
    assert trainable_count(keras_cnn.build("lenet5", num_classes=10)) == 60_000
    model = keras_cnn.build("lenet", input_shape=(28, 28, 1), num_classes=10)
    assert trainable_count(model) == 61_706 and model.output_shape == (None, 10)
    assert trainable_count(keras_cnn.build("lenet5", head="softmax")) == 60_000 - 10_164 + 10_164 + 850


def test_lenet5_scales_inputs_as_the_paper_and_can_skip_it():
    """Section II.B: background 0 -> -0.1 and foreground 1 -> 1.175, with no trainable parameter."""
    model = keras_cnn.build("lenet5")
    scaling = model.get_layer("input_scaling")
    assert np.allclose(scaling(np.array([0.0, 1.0], "float32")), [-0.1, 1.175])
    plain = keras_cnn.build("lenet5", input_scaling=None)
    assert "input_scaling" not in [layer.name for layer in plain.layers]
    standardized = keras_cnn.build("lenet5", input_scaling=(1 / 0.353, -0.286 / 0.353))
    assert np.allclose(standardized.get_layer("input_scaling")(np.array([0.286], "float32")), 0.0, atol=1e-6)
    assert trainable_count(plain) == trainable_count(model) == 60_000
    images = np.random.default_rng(0).random((2, 32, 32, 1), dtype="float32")
    plain.set_weights(model.get_weights())  # same weights: the only difference is the input mapping
    assert np.allclose(model(images), plain(images * 1.275 - 0.1), atol=1e-5)
    for bad in ("unit", (0, 1), (1, 2, 3), ("1", 0)):
        with pytest.raises(ValueError, match=r"input_scaling must be 'paper', None or a \(scale, offset\) pair"):
            keras_cnn.build("lenet5", input_scaling=bad)


def test_unknown_name_suggests_close_names():
    with pytest.raises(ValueError, match=r"Unknown model name 'no_such_net'"):
        keras_cnn.build("no_such_net")
    with pytest.raises(ValueError, match=r"Did you mean: lenet"):
        keras_cnn.build("lenett")


def test_names_are_forgiving_about_case_and_dashes():
    assert keras_cnn.get_spec("LeNet5").name == "lenet5"


def test_unknown_option_names_allowed_ones():
    with pytest.raises(ValueError,
                       match=r"unknown option\(s\) \['depth'\]; allowed options are \['head', 'input_scaling'\]"):
        keras_cnn.build("lenet5", depth=3)


def test_too_small_input_says_minimum():
    with pytest.raises(ValueError, match=r"input height 28 is too small; the network needs at least 32x32"):
        keras_cnn.build("lenet5", input_shape=(28, 28, 1))
    with pytest.raises(ValueError, match=r"input_shape must be \(height, width, channels\)"):
        keras_cnn.build("lenet", input_shape=(28, 28))


def test_bad_common_arguments():
    with pytest.raises(ValueError, match="pooling must be one of"):
        keras_cnn.build("lenet", pooling="sum")
    with pytest.raises(ValueError, match="num_classes must be a positive integer, received 0"):
        keras_cnn.build("lenet", num_classes=0)
    with pytest.raises(ValueError, match="does not exist"):
        keras_cnn.build("lenet", weights="/nonexistent.weights.h5")
    with pytest.raises(ValueError, match="head must be one of"):
        keras_cnn.build("lenet5", head="svm")


def test_include_top_false_and_pooling():
    features = keras_cnn.build("lenet", include_top=False, input_shape=(28, 28, 1))
    assert features.output_shape == (None, 5, 5, 16)
    assert keras_cnn.build("lenet", include_top=False, pooling="avg").output_shape == (None, 16)
    assert keras_cnn.build("lenet5", include_top=False, pooling="max").output_shape == (None, 120)


def test_weights_file_loads(tmp_path):
    model = keras_cnn.build("lenet")
    path = tmp_path / "lenet.weights.h5"
    model.save_weights(path)
    again = keras_cnn.build("lenet", weights=str(path))
    x = np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))


def test_classifier_activation_none_gives_logits():
    model = keras_cnn.build("lenet", classifier_activation=None)
    out = model.predict(np.ones((1, 28, 28, 1), "float32"), verbose=0)
    assert not np.isclose(out.sum(), 1.0)
    assert isinstance(model, keras.Model)


def test_model_info_without_building():
    info = keras_cnn.model_info("vgg19", measure=False)
    assert info["reference_macs"] == 19.63e9 and "params" not in info


def test_bad_option_values_raise_value_error_naming_them():
    with pytest.raises(ValueError, match=r"size must be one of \['large', 'small'\], received 'tiny'"):
        keras_cnn.build("mobilenet_v3_small", size="tiny")
    with pytest.raises(ValueError, match="Did you mean: small"):
        keras_cnn.build("mobilenet_v3_small", size="smal")
    with pytest.raises(ValueError, match=r"config must be one of \['paper', 'ungrouped', 'owt', 'zfnet'\]"):
        keras_cnn.build("alexnet", config="bogus")
    # structural options (stage tables) of the wrong kind: named with the variant's own values
    with pytest.raises(ValueError, match=r"cspdarknet53: cannot build with depths=7 .*own values are depths="):
        keras_cnn.build("cspdarknet53", depths=7)


def test_deep_nets_and_the_recursion_limit():
    """Keras walks a functional graph recursively: importing keras_cnn raises Python's limit to 10,000 frames
    (resnet1202's 4,210 layers build, save and load within it; tests/test_models.py builds it), and a net too deep
    for the limit in force is a ValueError saying so, not a RecursionError from inside Keras."""
    import inspect
    import sys

    from keras_cnn.registry import RECURSION_LIMIT

    assert RECURSION_LIMIT == 10_000 and sys.getrecursionlimit() >= RECURSION_LIMIT
    limit = sys.getrecursionlimit()
    with keras.StatelessScope(initialize_variables=False):
        try:
            sys.setrecursionlimit(len(inspect.stack()) + 100)  # resnet110 needs about 150 (measured)
            with pytest.raises(ValueError, match=r"resnet110: the network is too deep for Keras to walk its graph "
                                                 r"within Python's recursion limit \(\d+; importing keras_cnn raises "
                                                 r"it to at least 10,000\); raise it with sys.setrecursionlimit"):
                keras_cnn.build("resnet110")
        finally:
            sys.setrecursionlimit(limit)
