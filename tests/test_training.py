"""keras_cnn.train and keras-cnn train/evaluate/predict: run folder, resume, strategies, precision."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn.cli import main
from keras_cnn.registry import recipe_for
from keras_cnn.training import evaluate as inference
from keras_cnn.training import run as training
from keras_cnn.training.report import read_history, top_k_accuracy

QUICK = {"epochs": 2, "limit": 512, "verbose": 0}


class EpochRecorder(keras.callbacks.Callback):
    def __init__(self, stop_after=None):
        super().__init__()
        self.epochs, self.stop_after = [], stop_after

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)
        if self.stop_after is not None and epoch + 1 == self.stop_after:
            raise KeyboardInterrupt(f"simulated interruption after epoch {epoch + 1}")


def is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000


def test_train_writes_the_whole_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    result = keras_cnn.train("lenet5", "digits", output=run, **QUICK)
    for name in ("config.json", "best.keras", "last.keras", "history.csv", "summary.json"):
        assert (run / name).is_file(), name
    assert is_png(run / "curves.png") and is_png(run / "confusion_matrix.png")
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "logs").rglob("*"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary == result.summary
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == summary  # the one-line JSON
    assert summary["test_images"] == 360 and summary["params"] == 60_000
    assert summary["test_top5"] >= summary["test_top1"] > 0.3  # far above chance (0.1) after 2 short epochs
    assert result.history["epoch"] == [0, 1] and len(result.history["val_accuracy"]) == 2
    config = json.loads((run / "config.json").read_text())
    assert config["image_size"] == 32 and config["channels"] == 1 and config["num_classes"] == 10
    assert config["augment"] is False and config["recipe"] == recipe_for("lenet5").why  # LeNet's recipe
    reloaded = keras.saving.load_model(run / "last.keras")
    np.testing.assert_allclose(reloaded.predict(np.zeros((2, 32, 32, 1)), verbose=0),
                               result.model.predict(np.zeros((2, 32, 32, 1)), verbose=0), atol=1e-6)


def test_interrupted_run_resumes_without_losing_an_epoch(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        keras_cnn.train("lenet5", "digits", output=run, epochs=4, limit=256, verbose=0,
                        callbacks=[EpochRecorder(stop_after=2)])
    assert read_history(run / "history.csv")["epoch"] == [0, 1]
    assert (run / "last.keras").is_file() and (run / "backup").is_dir()
    with pytest.raises(ValueError, match="already holds a run; pass resume=True"):
        keras_cnn.train("lenet5", "digits", output=run, epochs=4, verbose=0)
    resumed = EpochRecorder()
    result = keras_cnn.train("lenet5", "digits", output=run, resume=True, verbose=0, callbacks=[resumed])
    assert resumed.epochs == [2, 3]  # the epoch count continues
    assert result.history["epoch"] == [0, 1, 2, 3]  # every epoch logged exactly once
    steps_per_epoch = 256 // recipe_for("lenet5").batch_size
    assert int(result.model.optimizer.iterations) == 4 * steps_per_epoch  # optimizer state came back too
    assert result.summary["epochs"] == 4
    # every epoch's wall time is logged, so the total covers the epochs run before the interruption
    assert len(result.history["epoch_seconds"]) == 4 and min(result.history["epoch_seconds"]) > 0
    assert result.summary["train_seconds"] == pytest.approx(sum(result.history["epoch_seconds"]), abs=0.1)


class LastTrainingWeights(keras.callbacks.Callback):
    """The raw (not averaged) weights after the last training step."""

    def on_train_batch_end(self, batch, logs=None):
        self.weights = [np.array(v) for v in self.model.trainable_variables]


def test_weight_average_is_evaluated_saved_and_resumed(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        keras_cnn.train("lenet5", "digits", output=run, epochs=3, limit=512, ema=0.9, verbose=0,
                        callbacks=[EpochRecorder(stop_after=1)])
    raw = LastTrainingWeights()
    result = keras_cnn.train("lenet5", "digits", output=run, resume=True, verbose=0, callbacks=[raw])
    assert result.history["epoch"] == [0, 1, 2] and json.loads((run / "config.json").read_text())["ema"] == 0.9
    final = [np.array(v) for v in result.model.trainable_variables]
    assert any(not np.allclose(a, b) for a, b in zip(final, raw.weights))  # the model holds the average
    # validation ran on the averaged weights: the last epoch's score is the final test score
    assert result.summary["test_top1"] == pytest.approx(result.history["val_accuracy"][-1], abs=1e-4)
    reloaded = keras.saving.load_model(run / "last.keras")  # the checkpoint holds the average too
    for a, b in zip(final, reloaded.trainable_variables):
        np.testing.assert_allclose(a, np.array(b), atol=1e-6)
    with pytest.raises(ValueError, match=r"ema must be a momentum in \[0, 1\)"):
        training.make_optimizer("adamw", ema=1.5)


def test_resume_needs_a_run_and_settings_are_checked(tmp_path):
    with pytest.raises(ValueError, match="holds no run"):
        keras_cnn.train("lenet5", output=tmp_path / "none", resume=True)
    with pytest.raises(ValueError, match=r"unknown training setting\(s\) \['epoch'\]"):
        keras_cnn.train("lenet5", output=tmp_path / "x", epoch=3)
    with pytest.raises(ValueError, match="Did you mean: lenet, lenet5"):
        keras_cnn.train("lenet6", output=tmp_path / "y")
    with pytest.raises(ValueError, match="Did you mean: fashion_mnist"):
        keras_cnn.train("lenet5", "fashion_mnst", output=tmp_path / "z")
    with pytest.raises(ValueError, match="strategy must be one of"):
        keras_cnn.train("lenet5", output=tmp_path / "w", strategy="horovod", epochs=1)
    with pytest.raises(ValueError, match=r"warmup_epochs must be at most epochs \(2: .*received 3"):
        keras_cnn.train("lenet5", output=tmp_path / "v", epochs=2, warmup_epochs=3)
    assert not any(tmp_path.iterdir())  # no run folder from any of them


def test_recipes_per_family():
    assert recipe_for("squeezenet1_1").learning_rate == 2e-4
    assert recipe_for("vgg16").learning_rate == 1e-4 and recipe_for("vgg16_bn").learning_rate == 1e-3
    assert recipe_for("inception_v3").label_smoothing == 0.1
    assert recipe_for("resnet50") == recipe_for(None)


def test_step_schedule_warms_up_drops_and_serializes():
    schedule = training.learning_rate_schedule(0.1, schedule="step", steps=100, warmup_steps=10)
    rates = [float(schedule(s)) for s in (0, 9, 10, 49, 50, 75, 99)]
    np.testing.assert_allclose(rates, [0.01, 0.1, 0.1, 0.1, 0.01, 0.001, 0.001], rtol=1e-5)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert float(again(60)) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="schedule must be one of"):
        training.learning_rate_schedule(0.1, schedule="exp", steps=10)


def test_mixed_precision_and_mixup_train(tmp_path):
    result = keras_cnn.train("lenet5", "digits", output=tmp_path / "run", mixed_precision="bfloat16", mixup=0.2,
                             cutmix=1.0, **QUICK)
    assert result.summary["precision"] == "mixed_bfloat16"
    assert result.model.layers[1].compute_dtype == "bfloat16" and result.model.outputs[0].dtype == "float32"
    assert np.isfinite(result.history["loss"]).all() and result.summary["test_top1"] > 0.2
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the run


def run_cli_in_subprocess(args, env_extra, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env_extra}
    completed = subprocess.run([sys.executable, "-m", "keras_cnn.cli", *args], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    summary = run_cli_in_subprocess(
        ["train", "lenet5", "--strategy", "mirrored", "--mirrored-cpus", "2", "--epochs", "2", "--limit", "512",
         "--output", "run", "--verbose", "0"], {"KERAS_BACKEND": "tensorflow"}, tmp_path)
    assert summary["strategy"] == "mirrored" and summary["devices"] == 2 and summary["test_top1"] > 0.2


def test_data_parallel_on_two_jax_cpu_devices(tmp_path):
    pytest.importorskip("jax")
    # XLA's LLVM back end at -O0: compiling LeNet-5's steps costs more than running them (20 s -> 16 s)
    xla_flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
    summary = run_cli_in_subprocess(
        ["train", "lenet5", "--strategy", "data_parallel", "--epochs", "2", "--limit", "512", "--output", "run",
         "--verbose", "0"], {"KERAS_BACKEND": "jax", "JAX_NUM_CPU_DEVICES": "2", "XLA_FLAGS": xla_flags}, tmp_path)
    assert summary["backend"] == "jax" and summary["devices"] == 2 and summary["test_top1"] > 0.3


def test_cli_train_evaluate_predict(tmp_path, capsys):
    from PIL import Image

    from keras_cnn import data

    run = tmp_path / "run"
    assert main(["train", "lenet5", "--epochs", "3", "--output", str(run), "--verbose", "0", "--lr", "2e-3",
                 "--schedule", "step", "--optimizer", "adam"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert json.loads((run / "config.json").read_text())["schedule"] == "step"
    assert main(["evaluate", str(run), "--checkpoint", "last"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["test_top1"] == pytest.approx(trained["test_top1"], abs=0.01)
    test = data.load_arrays("digits", "test")
    files = []
    for i in range(4):
        files.append(tmp_path / f"digit{i}.png")
        Image.fromarray(test.images[i, :, :, 0]).save(files[-1])
    assert main(["predict", str(run), *map(str, files), "--checkpoint", "last"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(len(line.split(": ", 1)[1].split(", ")) == 5 for line in lines)
    ranked = inference.predict(run, files, checkpoint="last")
    top1 = [r[0]["class"] for r in ranked]
    assert sum(t == str(label) for t, label in zip(top1, test.labels[:4])) >= 3
    assert all(r[0]["probability"] >= r[1]["probability"] for r in ranked)
    assert main(["evaluate", str(tmp_path / "missing")]) == 2


def test_top_k_accuracy():
    probabilities = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    assert top_k_accuracy(probabilities, np.array([2, 0]), k=1) == 0.5
    assert top_k_accuracy(probabilities, np.array([2, 1]), k=2) == 1.0


def test_aux_heads_trained_with_their_loss_weights():
    model = keras_cnn.build("googlenet", num_classes=10, input_shape=(112, 112, 1), aux_logits=True)
    training.compile_model(model, label_smoothing=0.0)
    x = np.random.default_rng(0).random((4, 112, 112, 1)).astype("float32")
    y = np.eye(10, dtype="float32")[[0, 1, 2, 3]]
    logs = model.evaluate(x, {n: y for n in model.output_names}, return_dict=True, verbose=0)
    expected = logs["predictions_loss"] + 0.3 * (logs["aux1_loss"] + logs["aux2_loss"])
    assert logs["loss"] == pytest.approx(expected, rel=1e-4)
    assert "predictions_top5_accuracy" in logs and "aux1_accuracy" not in logs
