"""Fine-tuning a real ImageNet checkpoint: the README's command against the old recipe, the hand-written
standard recipe and training from random weights, val top-1 per epoch on real data.

A real ImageNet-trained MobileNetV2 (torchvision layout, outside the repository) fine-tuned on Fashion-MNIST
(the first ``--limit`` training images, scored on the 10,000 test images after every epoch) at 64x64, one
channel (the checkpoint's first kernel summed over RGB), as
``keras-cnn train mobilenet_v2 --weights FILE --dataset fashion_mnist --image-size 64 --epochs 3 --limit N``:

- ``recipe``: that command (keras_cnn.train's fine-tuning recipe, keras_cnn.training.fine_tune);
- ``recipe_factor_F``: the same with ``backbone_lr_factor=F`` (how the factor was chosen);
- ``recipe_freeze_0``: the same with ``freeze_epochs=0`` (how the classifier phase was chosen);
- ``recipe_train_bn``: the same with ``train_batch_norm=True`` (what BatchNorm in inference mode buys);
- ``old``: the command before issue #39 (run this script with ``--variant old`` on that commit's tree:
  classifier epoch, then everything at the family's rate with BatchNorm training);
- ``standard``: the Keras transfer-learning guide's recipe written by hand here (classifier alone at the
  family's rate, then the whole net at 10x lower with BatchNorm in inference mode), same data pipeline;
- ``scratch``: the same command without ``--weights``.

    # REAL: the folder of real measurement data outside the repository
    python benchmarks/fine_tune_real.py --weights REAL/mobilenet_v2_imagenet_torchvision_layout.pth \
        --variant recipe --json benchmarks/results/fine_tune_real.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

COMMON = {"epochs": 3, "image_size": 64, "channels": 1, "verbose": 0}


def run_variant(variant, weights, limit, name="mobilenet_v2"):
    import keras_cnn

    settings = dict(COMMON, limit=limit)
    if variant == "standard":
        return standard_recipe(name, weights, settings)
    if variant != "scratch":
        settings["weights"] = weights
    if variant.startswith("recipe_factor_"):
        settings["backbone_lr_factor"] = float(variant.rsplit("_", 1)[1])
    elif variant == "recipe_freeze_0":
        settings["freeze_epochs"] = 0
    elif variant == "recipe_train_bn":
        settings["train_batch_norm"] = True
    elif variant == "old":
        settings["freeze_epochs"] = 1
    settings.pop("channels")
    with tempfile.TemporaryDirectory() as tmp:
        result = keras_cnn.train(name, "fashion_mnist", output=Path(tmp) / "run", **settings)
        config = json.loads((Path(tmp) / "run" / "config.json").read_text())
    return {"val_top1": [round(float(v), 4) for v in result.history["val_accuracy"]],
            "test_top1": result.summary["test_top1"], "recipe": config.get("recipe", ""),
            "freeze_epochs": config.get("freeze_epochs"), "backbone_lr_factor": config.get("backbone_lr_factor"),
            "train_batch_norm": config.get("train_batch_norm"), "learning_rate": config["learning_rate"]}


def standard_recipe(name, weights, settings):
    """The Keras guide's transfer learning, by hand: classifier alone, then everything at a 10x lower rate
    with BatchNorm in inference mode (``trainable = False``), on keras_cnn.train's own data pipeline."""
    import keras

    import keras_cnn
    from keras_cnn.training import run

    config = run.RunConfig(model=name, dataset="fashion_mnist", epochs=settings["epochs"],
                           image_size=settings["image_size"], limit=settings["limit"], weights=weights)
    recipe = keras_cnn.get_spec(name).recipe
    for key in ("optimizer", "learning_rate", "weight_decay", "label_smoothing", "batch_size"):
        if hasattr(recipe, key):
            setattr(config, key, getattr(recipe, key))
    arrays = run.load_splits(config)
    keras.utils.set_random_seed(0)
    model = run.build_from_config(config)
    train, test, steps = run.make_pipelines(config, arrays, model)
    backbone = keras_cnn.weights.freezable_layers(model, keras_cnn.get_spec(name))
    history = []

    def fit(rate, epochs):
        model.compile(keras.optimizers.AdamW(rate, weight_decay=config.weight_decay),
                      keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
        with run.fitting_on_logits(model):
            fitted = model.fit(train, validation_data=test, epochs=epochs, verbose=0)
        history.extend(round(float(v), 4) for v in fitted.history["val_accuracy"])

    for layer in backbone:
        layer.trainable = False
    fit(config.learning_rate, 1)
    for layer in backbone:
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    fit(config.learning_rate / 10, config.epochs - 1)
    return {"val_top1": history, "test_top1": history[-1], "learning_rate": config.learning_rate,
            "recipe": "Keras guide, by hand: classifier 1 epoch at the family's rate (AdamW, constant), then all "
                      "but BatchNorm at 1/10 of it (constant), BatchNorm in inference mode"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--limit", type=int, default=10000)
    parser.add_argument("--json", default=None, help="a JSON file to add this row to")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    measured = run_variant(args.variant, args.weights, args.limit)
    row = {"variant": args.variant, "limit": args.limit, **COMMON, **measured,
           "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(row), flush=True)
    if args.json:
        path = Path(args.json)
        record = json.loads(path.read_text()) if path.exists() else {"machine": platform.processor(), "rows": []}
        record["rows"] = [r for r in record["rows"] if r["variant"] != args.variant] + [row]
        path.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
