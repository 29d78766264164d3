"""Measured MACs agree with the reference tables within 1%."""

import keras
import pytest

import keras_cnn
from keras_cnn.analysis.counting import count_macs


@pytest.mark.parametrize("name,options,reference", [
    ("resnet50", {}, 4.09e9), ("vgg16", {}, 15.47e9), ("googlenet", {}, 1.58e9), ("mobilenet_v2", {}, 301e6),
    ("mobilenet_v3_small", {}, 57e6), ("shufflenet_v2_x1_0", {}, 146e6), ("repvgg_a0", {"deploy": True}, 1.361e9),
    ("alexnet", {}, 0.724e9), ("lenet", {}, 0.417e6),
])
def test_measured_macs_within_one_percent(name, options, reference):
    macs = count_macs(keras_cnn.build(name, **options))
    assert abs(macs / reference - 1) <= 0.01, macs
    keras.backend.clear_session()


def test_stride_placement_changes_macs_not_params():
    v15 = count_macs(keras_cnn.build("resnet50"))
    paper = count_macs(keras_cnn.build("resnet50", stride_in_1x1=True))
    assert abs(paper / 3.88e9 - 1) <= 0.01 and paper < v15


def test_reparameterized_repvgg_counts_like_deploy_build():
    train = keras_cnn.build("repvgg_a0", input_shape=(64, 64, 3))
    assert count_macs(keras_cnn.reparameterize(train)) == count_macs(
        keras_cnn.build("repvgg_a0", deploy=True, input_shape=(64, 64, 3))) < count_macs(train)


def test_model_info_reports_measured_beside_reference():
    info = keras_cnn.model_info("mobilenet_v3_small")
    assert info["params"] == info["reference_params"] == 2_542_856
    assert info["macs"] == count_macs(keras_cnn.build("mobilenet_v3_small"))
    assert abs(info["macs_ratio"] - 1) <= 0.01 and info["reference_macs"] == 57e6
    assert "macs" not in keras_cnn.model_info("lenet5", measure=False)
    keras.backend.clear_session()


def test_bench_rejects_unknown_and_unpaired_names():
    from keras_cnn.analysis.speed import check_names

    with pytest.raises(ValueError, match="Did you mean"):
        check_names(["mobilenet_v9"])
    with pytest.raises(ValueError, match=r"no keras.applications equivalent for \['lenet5'\]"):
        check_names(["lenet5"], paired=True)
    with pytest.raises(ValueError, match="at least 75x75"):
        from keras_cnn.analysis.speed import train_speed

        train_speed(["inception_v3"], image_size=32)


# The bench commands themselves (train-speed and latency beside keras.applications, repvgg's fused graphs)
# run as README commands in tests/test_cli_e2e.py::test_bench_commands, which checks the rows they write.


def test_repvgg_bench_refuses_other_nets():
    from keras_cnn.analysis.speed import repvgg_speedup

    with pytest.raises(ValueError, match="RepVGG variant"):
        repvgg_speedup("resnet50")
