"""Residual and dense line: options, the CIFAR nets, DenseNet-BC, round-trips, training."""

import keras
import numpy as np
import pytest
from conftest import digits_fit_lowers_loss, randomize_batch_norm, trainable_count

import keras_cnn


def weighted_layers(model):
    return sum(isinstance(l, (keras.layers.Conv2D, keras.layers.Dense)) for l in model.layers
               if not l.name.endswith("proj_conv") and "_se" not in l.name)


def test_stride_in_1x1_same_params_different_placement():
    v15, paper = keras_cnn.build("resnet50"), keras_cnn.build("resnet50", stride_in_1x1=True)
    assert trainable_count(v15) == trainable_count(paper) == 25_557_032
    assert v15.get_layer("stage2_block1_conv2_conv").strides == (2, 2)
    assert paper.get_layer("stage2_block1_conv1_conv").strides == (2, 2)
    assert paper.get_layer("stage2_block1_conv2_conv").strides == (1, 1)


def test_shortcut_options():
    b = trainable_count(keras_cnn.build("resnet18"))
    a = trainable_count(keras_cnn.build("resnet18", shortcut="A"))
    c = trainable_count(keras_cnn.build("resnet18", shortcut="C"))
    # B adds three projections (64->128, 128->256, 256->512) with BN; C adds one to every block
    projections_b = sum(i * o + 2 * o for i, o in ((64, 128), (128, 256), (256, 512)))
    assert b - a == projections_b
    assert c > b
    with pytest.raises(ValueError, match=r"shortcut must be one of \['A', 'B', 'C'\], received 'D'"):
        keras_cnn.build("resnet18", shortcut="D")


def test_zero_init_residual_and_se_and_drop_path():
    model = keras_cnn.build("resnet50", zero_init_residual=True, input_shape=(64, 64, 3))
    gamma = keras.ops.convert_to_numpy(model.get_layer("stage1_block1_conv3_bn").gamma)
    assert np.all(gamma == 0)
    se = keras_cnn.build("resnet50", se_ratio=1 / 16)
    assert trainable_count(se) == 28_088_024  # = se_resnet50
    dp = keras_cnn.build("resnet18", drop_path_rate=0.2, input_shape=(64, 64, 3))
    rates = [l.rate for l in dp.layers if isinstance(l, keras_cnn.layers.DropPath)]
    # linear ramp over the 8 blocks; the first block's rate is 0, so it gets no DropPath layer
    assert rates == pytest.approx([0.2 * i / 7 for i in range(1, 8)])


def test_resnext_is_one_call_with_grouped_convs():
    model = keras_cnn.build("resnext50_32x4d", num_classes=10, input_shape=(64, 64, 3))
    conv = model.get_layer("stage1_block1_conv2_conv")
    assert conv.groups == 32 and conv.filters == 128
    with pytest.raises(ValueError, match="basic blocks support only groups=1"):
        keras_cnn.build("resnet18", groups=32)


@pytest.mark.parametrize("depth,paper_millions", [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7)])
def test_cifar_resnets_depth_and_paper_table(depth, paper_millions):
    model = keras_cnn.build(f"resnet{depth}")
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    assert weighted_layers(model) == depth  # 6n+2 weighted layers, as the paper counts them
    assert float(f"{trainable_count(model) / 1e6:.2g}") == paper_millions  # Table 6 prints 2 digits
    assert not any(l.name.endswith("proj_conv") for l in model.layers)  # option A: no projections


def test_cifar_depth_rule():
    with pytest.raises(ValueError, match=r"depth must be 6n\+2"):
        keras_cnn.build("resnet20", depth=21)
    for depth in (8, 26):  # any 6n+2 (the paper's 1202 builds too, but its graph nears Python's recursion limit)
        assert weighted_layers(keras_cnn.build("resnet20", depth=depth)) == depth


def test_densenet_bc_cifar_is_one_call():
    model = keras_cnn.build("densenet_bc_100_k12")
    assert trainable_count(model) == 769_162 and model.output_shape == (None, 10)
    custom = keras_cnn.build("densenet121", growth_rate=12, block_config=(16, 16, 16), num_init_features=24,
                             stem="cifar", input_shape=(32, 32, 3), num_classes=10)
    assert trainable_count(custom) == 769_162
    no_compression = keras_cnn.build("densenet_bc_100_k12", compression=1.0)
    assert trainable_count(no_compression) > 769_162
    with pytest.raises(ValueError, match="growth_rate must be a positive integer"):
        keras_cnn.build("densenet121", growth_rate=0)


def test_csp_exact_counts_of_timm_definition():
    # REFERENCE.md gives millions; these are the exact counts of timm's definitions.
    expected = {"cspresnet50": 21_616_168, "cspresnext50": 20_569_896, "cspdarknet53": 27_642_184}
    for name, params in expected.items():
        assert trainable_count(keras_cnn.build(name)) == params
        keras.backend.clear_session()


def test_fold_batch_norm_resnet18_is_exact():
    model = keras_cnn.build("resnet18", input_shape=(64, 64, 3), num_classes=10, classifier_activation=None)
    randomize_batch_norm(model, seed=5)
    folded = keras_cnn.reparameterize(model, fold_batch_norm=True)
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in folded.layers)
    x = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    got = keras.ops.convert_to_numpy(folded(x, training=False))
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


# .keras round trips: tests/test_persistence.py saves a variant of every family here in full (every
# keras_cnn layer class among them) and loads it in a fresh process that only imported keras_cnn, with
# bit-identical outputs, and rebuilds every registered name from its config there; the in-process round
# trips this file had (the same check, in the process that built the model) were a weaker copy of it.


def test_resnet20_fit_on_real_digits_lowers_loss():
    # the helper's 320 images, 3 epochs of batches of 16: 1.65 -> 0.34 and 0.79 held-out accuracy
    # (every one of the 1437 training images in batches of 32: 0.88, at three times the cost)
    first, last, accuracy = digits_fit_lowers_loss("resnet20", size=32, epochs=3, channels=3)
    assert last < first and accuracy > 0.5, (first, last, accuracy)
