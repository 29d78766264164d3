"""Measured MACs agree with the reference tables within 1%."""

import keras
import pytest

import keras_cnn
from keras_cnn.bench import count_macs


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
