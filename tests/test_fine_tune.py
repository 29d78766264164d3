"""Fine-tuning a checkpoint keeps what it knows (issue #39): the classifier alone first, then the whole net
at a lower rate, the loaded backbone's BatchNorm in inference mode, recorded in config.json, and the
right phase after a kill and ``--resume``.

The measurement on real data (a real ImageNet MobileNetV2 on Fashion-MNIST) is benchmarks/fine_tune_real.py;
the checkpoints here are torchvision's own state_dicts of random models (no network, no real data needed).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the test extra installs torch")
torchvision = pytest.importorskip("torchvision")

import keras_cnn  # noqa: E402
from keras_cnn.training.fine_tune import BACKBONE_LR_FACTOR, FREEZE_EPOCHS, batch_norm_layers, fine_tune  # noqa: E402

SHAPE = (32, 32, 1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """torchvision's mobilenet_v3_small with random weights and random BatchNorm statistics, as a .pth."""
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small(weights=None)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("checkpoint") / "mnv3s.pth"
    torch.save(model.state_dict(), path)
    return path


def _state(layers):
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in layers}


def _max_change(before: dict, after: dict) -> float:
    return max(float(np.abs(a - b).max()) for name in before for a, b in zip(before[name], after[name]))


class _EveryEpoch(keras.callbacks.Callback):
    """The BatchNorm and the backbone's convolution weights, and the rate of the epoch's last step."""

    def __init__(self, bn_names, conv_names):
        super().__init__()
        self.bn_names, self.conv_names, self.epochs = bn_names, conv_names, []

    def on_epoch_end(self, epoch, logs=None):
        layers = {layer.name: layer for layer in self.model.layers}
        step = int(self.model.optimizer.iterations.numpy())
        self.epochs.append({"bn": _state(layers[n] for n in self.bn_names),
                            "conv": _state(layers[n] for n in self.conv_names),
                            "rate": float(self.model.optimizer._learning_rate(step - 1))})


def _fine_tune(checkpoint, tmp_path, **settings):
    loaded = keras_cnn.build("mobilenet_v3_small", weights=str(checkpoint), num_classes=10, input_shape=SHAPE)
    bn = batch_norm_layers(loaded.layers)
    convs = [layer for layer in loaded.layers if isinstance(layer, keras.layers.Conv2D)][:3]
    watch = _EveryEpoch([layer.name for layer in bn], [layer.name for layer in convs])
    result = keras_cnn.train("mobilenet_v3_small", "digits", weights=str(checkpoint), epochs=3, limit=64,
                             batch_size=32, image_size=32, output=tmp_path / "run", verbose=0, callbacks=[watch],
                             **settings)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    return _state(bn), _state(convs), watch.epochs, config, result


def test_classifier_first_then_everything_at_the_lower_rate_with_batch_norm_kept(checkpoint, tmp_path):
    bn, convs, epochs, config, result = _fine_tune(checkpoint, tmp_path)
    assert (config["freeze_epochs"], config["backbone_lr_factor"], config["train_batch_norm"]) == (
        FREEZE_EPOCHS, BACKBONE_LR_FACTOR, False) == (1, 0.1, False), config
    assert "fine-tuning a checkpoint" in config["recipe"] and "BatchNorm in inference mode" in config["recipe"]
    rate = config["learning_rate"]
    first, *rest = epochs
    assert _max_change(convs, first["conv"]) == 0.0  # the classifier phase: the backbone is frozen
    assert first["rate"] == pytest.approx(rate)  # ... at the family's rate
    assert _max_change(convs, rest[0]["conv"]) > 0.0  # then it trains
    assert all(0 < e["rate"] <= rate * BACKBONE_LR_FACTOR * (1 + 1e-6) for e in rest[:1]), [e["rate"] for e in epochs]
    for epoch in epochs:  # the checkpoint's BatchNorm statistics (and scale/offset) after every epoch
        assert _max_change(bn, epoch["bn"]) == 0.0
    assert len(batch_norm_layers(result.model.layers)) == len(bn) > 20


def test_every_part_of_the_recipe_can_be_overridden(checkpoint, tmp_path):
    bn, convs, epochs, config, _ = _fine_tune(checkpoint, tmp_path, train_batch_norm=True, freeze_epochs=0,
                                             backbone_lr_factor=0.5)
    assert (config["freeze_epochs"], config["backbone_lr_factor"], config["train_batch_norm"]) == (0, 0.5, True)
    assert _max_change(bn, epochs[0]["bn"]) > 0.0  # asked: BatchNorm re-estimates its statistics
    assert _max_change(convs, epochs[0]["conv"]) > 0.0  # no classifier phase: the backbone trains at once
    assert max(e["rate"] for e in epochs) <= config["learning_rate"] * 0.5 * (1 + 1e-6)
    with pytest.raises(ValueError, match="backbone_lr_factor=0.1 needs weights"):
        keras_cnn.train("lenet5", "digits", backbone_lr_factor=0.1, output=tmp_path / "no")
    with pytest.raises(ValueError, match="freeze_epochs must be below epochs"):
        keras_cnn.train("mobilenet_v3_small", "digits", weights=str(checkpoint), epochs=2, freeze_epochs=2,
                        output=tmp_path / "no")
    assert not (tmp_path / "no").exists()


def test_fine_tune_helper_for_a_users_backbone():
    """The two lines a Keras user writes, as :func:`keras_cnn.training.fine_tune.fine_tune`: a features
    backbone trains with its BatchNorm in inference mode (a training-mode call leaves the statistics alone)."""
    backbone = keras_cnn.build("resnet18", features=("P3", "P4"), input_shape=(32, 32, 3))
    frozen = fine_tune(backbone)
    assert frozen and all(not layer.trainable for layer in frozen)
    assert all(layer.trainable for layer in backbone.layers if layer not in frozen)
    before = _state(frozen)
    backbone(np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype("float32"), training=True)
    assert _max_change(before, _state(frozen)) == 0.0
    assert fine_tune(backbone, train_batch_norm=True) == []  # asked: nothing stays frozen
    assert all(layer.trainable for layer in backbone.layers)


_CHECK_RUN = """
    import json, sys
    import numpy as np
    import keras, keras_cnn
    from keras_cnn.training.fine_tune import batch_norm_layers

    loaded = keras_cnn.build("mobilenet_v3_small", weights=sys.argv[1], num_classes=10, input_shape=(32, 32, 1))
    trained = keras.saving.load_model(sys.argv[2])
    def weights(model, kind):
        return [w for layer in model.layers if isinstance(layer, kind) for w in layer.get_weights()]
    bn = max(float(np.abs(a - b).max()) for a, b in zip(weights(loaded, keras.layers.BatchNormalization),
                                                       weights(trained, keras.layers.BatchNormalization)))
    conv = max(float(np.abs(a - b).max()) for a, b in zip(weights(loaded, keras.layers.Conv2D),
                                                         weights(trained, keras.layers.Conv2D)))
    from keras_cnn.deploy.export import checkpoint_preprocessing
    print("@@" + json.dumps({"bn_change": bn, "conv_change": conv, "normalization": checkpoint_preprocessing(trained)}))
"""


@pytest.mark.slow
def test_a_fine_tuning_run_killed_after_the_classifier_phase_resumes_in_the_right_phase(checkpoint, tmp_path):
    """``keras-cnn train mobilenet_v3_small --weights FILE`` killed (SIGKILL) half way through epoch 2, the first
    epoch of the whole-net phase, then ``--resume``: every epoch once, config.json as written, the backbone
    trained and the checkpoint's BatchNorm statistics still there in the final model."""
    from test_persistence import _env, _history_epochs, _keras_cnn_command, _start_and_kill_mid_epoch

    args = ["train", "mobilenet_v3_small", "--weights", str(checkpoint), "--dataset", "digits", "--epochs", "3",
            "--limit", "512", "--batch-size", "8", "--image-size", "32", "--output", "RUN", "--verbose", "1"]
    proc, step = _start_and_kill_mid_epoch(tmp_path, epoch=2, args=args, epochs=3)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    run = tmp_path / "RUN"
    assert _history_epochs(run) == [0], f"killed at step {step} of epoch 2"
    config = (run / "config.json").read_text()
    resumed = subprocess.run(_keras_cnn_command() + args + ["--resume"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=900, env=_env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _history_epochs(run) == [0, 1, 2]
    assert (run / "config.json").read_text() == config  # nothing rewritten: the recipe as the run started
    assert json.loads(config)["freeze_epochs"] == 1 and json.loads(config)["train_batch_norm"] is False
    check = subprocess.run([sys.executable, "-c", textwrap.dedent(_CHECK_RUN), str(checkpoint),
                            str(run / "last.keras")], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                           env=_env())
    assert check.returncode == 0, check.stderr[-3000:]
    changes = json.loads(next(line[2:] for line in check.stdout.splitlines() if line.startswith("@@")))
    assert changes["bn_change"] == 0.0 and changes["conv_change"] > 0.0, changes
    # the resumed model is still the checkpoint's: its normalization (a layer without variables) is there
    assert changes["normalization"] and changes["normalization"]["mean"] == [sum([0.485, 0.456, 0.406]) / 3], changes
