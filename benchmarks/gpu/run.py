"""The GPU check (issue 35): ``model.fit`` on a GPU with the JAX and torch backends, in one device call.

A machine with a GPU but no TensorFlow (the lent H100/H200) runs keras_cnn on Keras' JAX and torch
backends: ``import keras_cnn`` needs no TensorFlow, and nothing here uses ``tf.data``. One call of this
script, per backend (each in its own process, since Keras picks its backend once):

1. **Every family trains on the GPU**: the smallest variant of each family, compiled as
   ``keras_cnn.train`` compiles it (``compile_model``, fitted on logits), ``model.fit`` for a few steps on
   one random batch in ``mixed_bfloat16``; the loss must go down, and the variables must live on the
   accelerator.
2. **Speed against keras.applications**, side by side in one process
   (:func:`keras_cnn.analysis.speed.train_speed`): images/s of a train step at 224x224, ``mixed_bfloat16``,
   XLA on JAX (``jit_compile=True``), eager on torch (``torch.compile`` takes minutes per net); ResNet-50,
   MobileNetV2, MobileNetV3-Large, DenseNet-121 and InceptionV3 first, then the other shared
   architectures while time is left.
3. **Against the hardware**: model FLOPs utilisation of the ResNet-50 step: 6 x MACs x images/s over the
   card's dense bf16 peak (:data:`PEAK_BF16`).
4. **Real training**: Fashion-MNIST (``--fashion-mnist FILE.npz``, made by ``prepare.py``) trained to the end
   with each net's recipe (epochs, batch, optimizer, schedule, label smoothing; random translation as a
   Keras layer in front of the net, since ``tf.data`` needs TensorFlow), test top-1 and wall time.

Every part stops at the time budget (``--budget-s``, split over the backends) and says what it skipped.
The results go to ``OUT/gpu_check.json`` (written after every part, so a call cut short still returns
what it measured) and the log to ``OUT/gpu_check.log``.

    python3 benchmarks/gpu/run.py --out $OUT --fashion-mnist .gpu/fashion_mnist.npz   # on the GPU machine
    python benchmarks/gpu/run.py --dry-run --out gpu-dry                         # CPU, JAX, tiny sizes

``--dry-run`` runs every part on the CPU with the JAX backend at tiny sizes (three families at their
minimum input, the ResNet-50 pair at 32x32, ResNet-20 on 512 Fashion-MNIST images or, without the file,
scikit-learn's digits, for one epoch), so that the script is known to work before a device is lent; CI runs
it in an environment without TensorFlow (tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

#: Dense bf16 peak FLOP/s (without sparsity) by device name, from NVIDIA's data sheets (SXM parts).
PEAK_BF16 = {"H200": 989.4e12, "H100": 989.4e12, "A100": 312e12, "L40S": 362.05e12}
#: The speed pairs measured first (the issue's list), then every other architecture both libraries have.
FIRST_PAIRS = ("resnet50", "mobilenet_v2", "mobilenet_v3_large", "densenet121", "inception_v3")
FASHION_NETS = ("resnet18", "mobilenet_v2")
#: The dry run's nets (every family on the GPU). XLA's compile times on the CI CPU decide them (measured under
#: load: mobilenet_v3_small's fit 109 s, resnet20's one-epoch run 141 s; shufflenet_v2_x0_5's fit 23 s;
#: squeezenet1_1's loss did not fall in 6 steps of batch 2): the dry run checks the script, the device run the nets.
DRY_RUN_FASHION_NETS = ("lenet5",)
DRY_RUN_FAMILIES = ("lenet", "resnet_cifar", "shufflenet_v2")
MFU_NET = "resnet50"


# --------------------------------------------------------------------------- the parent: one worker per backend
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_check")))
    parser.add_argument("--dry-run", action="store_true", help="CPU, JAX, tiny sizes (what CI runs)")
    parser.add_argument("--backends", default=None, help="comma-separated (default: jax,torch; dry run: jax)")
    parser.add_argument("--budget-s", type=float, default=450, help="seconds for the whole check")
    parser.add_argument("--fashion-mnist", type=Path, default=None, help="the .npz prepare.py writes")
    parser.add_argument("--batch-size", type=int, default=None, help="speed batch (default 256; dry run 2)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    args.out.mkdir(parents=True, exist_ok=True)
    backends = (args.backends or ("jax" if args.dry_run else "jax,torch")).split(",")
    started = time.time()
    # JAX gets the larger share: it runs XLA and the Fashion-MNIST training
    shares = {"jax": 0.62, "torch": 0.38} if set(backends) == {"jax", "torch"} else {b: 1 / len(backends)
                                                                                      for b in backends}
    report = {"issue": 35, "dry_run": args.dry_run, "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
              "host": platform.node(), "python": platform.python_version(), "backends": {}}
    log = (args.out / "gpu_check.log").open("a")
    for backend in backends:
        deadline = time.time() + shares[backend] * (args.budget_s - (time.time() - started)) \
            if backend != backends[-1] else started + args.budget_s
        command = [sys.executable, __file__, "--worker", backend, "--out", str(args.out),
                   "--deadline", str(deadline), *(["--dry-run"] if args.dry_run else []),
                   *(["--fashion-mnist", str(args.fashion_mnist)] if args.fashion_mnist else []),
                   *(["--batch-size", str(args.batch_size)] if args.batch_size else [])]
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONUNBUFFERED": "1"}
        if args.dry_run:
            # XLA's LLVM back end at -O0: compiling costs more than running these few steps on a CPU
            env.update(JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="",
                       XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip())
        print(f"== {backend}: until {time.strftime('%H:%M:%S', time.gmtime(deadline))}", flush=True)
        proc = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=args.budget_s + 120,
                              check=False)
        part = args.out / f"gpu_check_{backend}.json"
        report["backends"][backend] = json.loads(part.read_text()) if part.exists() else {}
        report["backends"][backend]["exit_status"] = proc.returncode
        _write(args.out / "gpu_check.json", report)
    report["seconds"] = round(time.time() - started, 1)
    _write(args.out / "gpu_check.json", report)
    print(json.dumps(summary_lines(report), indent=1))
    failed = [b for b, r in report["backends"].items() if r.get("exit_status") != 0 or r.get("errors")]
    return 1 if failed else 0


def summary_lines(report) -> dict:
    """The few numbers worth reading first."""
    out = {}
    for backend, result in report["backends"].items():
        families = result.get("families", [])
        out[backend] = {
            "device": result.get("device"), "exit_status": result.get("exit_status"),
            "families_ok": f"{sum(r.get('ok', False) for r in families)}/{len(families)}",
            "speed_ratios": {r["model"]: r["ratio_ours_over_keras_images_per_s"] for r in result.get("speed", [])},
            "mfu": result.get("mfu", {}).get("mfu"),
            "fashion_mnist": {r["model"]: r.get("test_top1") for r in result.get("fashion_mnist", [])},
            "errors": len(result.get("errors", [])), "skipped": result.get("skipped", []),
        }
    return out


def _write(path: Path, obj):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    tmp.replace(path)


# --------------------------------------------------------------------------- the worker: one backend
def worker(args):
    import keras
    import numpy as np

    backend = keras.backend.backend()
    result = {"backend": backend, "keras": keras.__version__, "numpy": np.__version__, "errors": [], "skipped": []}
    result.update(device_info(backend))
    path = args.out / f"gpu_check_{backend}.json"
    deadline = args.deadline or time.time() + 300
    result["precision"] = _mixed_bfloat16()
    parts = (("families", families_train), ("speed", speed_against_keras_applications), ("mfu", mfu),
             ("fashion_mnist", fashion_mnist))
    for name, part in parts:
        if time.time() > deadline:
            result["skipped"].append(f"{name}: time budget spent")
            continue
        started = time.time()
        try:
            result[name] = part(args, result, deadline)
        except Exception as error:  # noqa: BLE001  (a part that fails is recorded; the others still run)
            result["errors"].append({"part": name, "error": f"{type(error).__name__}: {error}",
                                     "traceback": traceback.format_exc()[-3000:]})
        result.setdefault("part_seconds", {})[name] = round(time.time() - started, 1)
        print(f"-- {backend} {name}: {result['part_seconds'][name]} s", flush=True)
        _write(path, result)
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    if result["tensorflow_imported"]:
        result["errors"].append({"part": "environment", "error": "TensorFlow was imported"})
    _write(path, result)
    return 0


def _mixed_bfloat16() -> str:
    """Set the global policy to ``mixed_bfloat16``; again after every ``keras.backend.clear_session()``,
    which resets it to float32."""
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    return keras.mixed_precision.global_policy().name


def device_info(backend) -> dict:
    """The accelerator the backend sees (or the CPU) and its bf16 peak."""
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        name, platform_name = str(getattr(device, "device_kind", device)), device.platform
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            name, platform_name = torch.cuda.get_device_name(0), "gpu"
        else:
            name, platform_name = platform.processor() or "cpu", "cpu"
    else:
        name, platform_name = "cpu", "cpu"
    peak = next((value for key, value in PEAK_BF16.items() if key in name.upper()), None)
    return {"device": name, "platform": platform_name, "peak_bf16_flops": peak}


def _on_accelerator(model, backend) -> float:
    """The share of the model's variables that live on a GPU."""
    placed = []
    for variable in model.variables:
        value = variable.value
        if backend == "jax":
            placed.append(all(d.platform == "gpu" for d in value.devices()))
        elif backend == "torch":
            placed.append(value.device.type == "cuda")
    return round(sum(placed) / max(1, len(placed)), 3)


def _bfloat16_share(model) -> float:
    """The share of the layers with a kernel (convolutions, dense) that compute in bfloat16 (the
    classifier stays float32 by design)."""
    kinds = [layer.compute_dtype for layer in model._flatten_layers(include_self=False)
             if getattr(layer, "kernel", None) is not None]
    return round(sum(kind == "bfloat16" for kind in kinds) / max(1, len(kinds)), 3)


def _targets(model, y):
    from keras_cnn.training.run import main_output

    return {n: y for n in model.output_names} if main_output(model) else y


def families_train(args, result, deadline) -> list[dict]:
    """The smallest variant of each family: a few ``fit`` steps on one random batch; the loss must fall."""
    import keras
    import numpy as np

    from keras_cnn.registry import build, get_spec, list_models, recipe_for
    from keras_cnn.training.logits import fitting_on_logits
    from keras_cnn.training.run import compile_model

    smallest = {}
    for name in list_models():
        spec = get_spec(name)
        if spec.family not in smallest or (spec.params or 0) < (get_spec(smallest[spec.family]).params or 0):
            smallest[spec.family] = name
    rows, steps = [], 6 if args.dry_run else 8
    batch = 2 if args.dry_run else 16
    for family, name in sorted(smallest.items()):
        if args.dry_run and family not in DRY_RUN_FAMILIES:
            continue
        if time.time() > deadline:
            result["skipped"].append(f"families: {family} and after, time budget spent")
            break
        spec = get_spec(name)
        size = spec.min_input_size if args.dry_run else max(spec.min_input_size, 64)
        row = {"family": family, "model": name, "input": size, "batch": batch}
        started = time.time()
        try:
            keras.utils.set_random_seed(0)
            _mixed_bfloat16()
            model = build(name, num_classes=10, input_shape=(size, size, spec.input_shape[-1]))
            recipe = recipe_for(name)  # nets without BatchNorm need their family's smaller rate
            compile_model(model, steps_per_epoch=1, epochs=steps, optimizer=recipe.optimizer,
                          learning_rate=recipe.learning_rate, warmup_epochs=0, weight_decay=0.0,
                          jit_compile=result["backend"] == "jax")
            rng = np.random.default_rng(0)
            x = rng.random((batch, size, size, spec.input_shape[-1])).astype("float32")
            y = np.eye(10, dtype="float32")[rng.integers(0, 10, batch)]
            with fitting_on_logits(model):
                history = model.fit(x, _targets(model, y), batch_size=batch, epochs=steps, verbose=0).history
            losses = [float(v) for v in history["loss"]]
            row.update(loss_first=round(losses[0], 4), loss_last=round(losses[-1], 4),
                       loss_fell=losses[-1] < losses[0] and all(np.isfinite(losses)),
                       on_accelerator=_on_accelerator(model, result["backend"]),
                       bfloat16_layers=_bfloat16_share(model))
            expected = 0.0 if result["platform"] == "cpu" else 1.0
            row["ok"] = bool(row["loss_fell"] and row["on_accelerator"] == expected and row["bfloat16_layers"] > 0.5)
        except Exception as error:  # noqa: BLE001
            row.update(ok=False, error=f"{type(error).__name__}: {error}"[:500])
        row["seconds"] = round(time.time() - started, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
        keras.backend.clear_session()
    return rows


def speed_against_keras_applications(args, result, deadline) -> list[dict]:
    """img/s of a train step, ours vs keras.applications, side by side (the issue's five first)."""
    from keras_cnn.analysis.speed import KERAS_APPLICATIONS, train_speed

    names = [n for n in FIRST_PAIRS if n in KERAS_APPLICATIONS]
    names += sorted(n for n in KERAS_APPLICATIONS if n not in names)
    if args.dry_run:
        names, size, batch, rounds, steps = [MFU_NET], 32, args.batch_size or 2, 1, 1
    else:
        size, batch, rounds, steps = 224, args.batch_size or 256, 5, 5
    rows = []
    for name in names:
        if time.time() > deadline:
            result["skipped"].append(f"speed: {name} and after, time budget spent")
            break
        try:
            _mixed_bfloat16()  # (train_speed clears the session after each pair)
            (row,) = train_speed([name], image_size=size, batch_size=batch, rounds=rounds, steps=steps, warmup=2,
                                 jit_compile=result["backend"] == "jax")
        except Exception as error:  # noqa: BLE001  (e.g. out of memory at this batch)
            rows.append({"model": name, "error": f"{type(error).__name__}: {error}"[:500]})
            continue
        row["ratio_ours_over_keras_images_per_s"] = round(row["ours_images_per_s"] / row["keras_images_per_s"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def mfu(args, result, deadline) -> dict:
    """Model FLOPs utilisation of our ResNet-50 train step: 6 x MACs x images/s over the bf16 peak."""
    from keras_cnn.analysis.counting import count_macs
    from keras_cnn.registry import build

    row = next((r for r in result.get("speed", []) if r.get("model") == MFU_NET and "ours_images_per_s" in r), None)
    if row is None:
        return {"mfu": None, "why": f"no {MFU_NET} speed row"}
    macs = count_macs(build(MFU_NET, input_shape=tuple(row["input"]), num_classes=1000))
    flops_per_s = 6 * macs * row["ours_images_per_s"]
    peak = result.get("peak_bf16_flops")
    return {"model": MFU_NET, "input": row["input"], "batch_size": row["batch_size"], "macs": macs,
            "images_per_s": row["ours_images_per_s"], "model_tflops_per_s": round(flops_per_s / 1e12, 2),
            "peak_bf16_tflops_per_s": peak and round(peak / 1e12, 1),
            "mfu": round(flops_per_s / peak, 4) if peak else None,
            "anchors": "NVIDIA ResNet-50 AMP on one A100 about 2,400 img/s; MLPerf Training about 7,000 img/s per "
                       "H100 (about 18% MFU)"}


def _fashion_arrays(args):
    import numpy as np

    if args.fashion_mnist:
        with np.load(args.fashion_mnist) as data:
            arrays = {k: data[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        source = f"Fashion-MNIST ({args.fashion_mnist.name})"
    else:
        if not args.dry_run:
            raise ValueError("--fashion-mnist FILE.npz is needed (benchmarks/gpu/prepare.py writes it)")
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = (digits.images * (255 / 16)).astype("uint8")
        arrays = {"x_train": images[:1500], "y_train": digits.target[:1500], "x_test": images[1500:],
                  "y_test": digits.target[1500:]}
        source = "scikit-learn digits (dry run without --fashion-mnist)"
    if args.dry_run:
        arrays = {k: v[:512] if k.endswith("train") else v[:256] for k, v in arrays.items()}
    return arrays, source


def _fit_images(images, size, resize):
    """uint8 [N, H, W] -> float32 [N, size, size, 1] in [0, 1], padded (LeNet's recipe) or resized bilinearly,
    as keras_cnn.data.prepare_images does (without TensorFlow)."""
    import keras
    import numpy as np

    x = images[..., None].astype("float32") / 255.0
    if resize == "pad":
        top, left = (size - x.shape[1]) // 2, (size - x.shape[2]) // 2
        return np.pad(x, [(0, 0), (top, size - x.shape[1] - top), (left, size - x.shape[2] - left), (0, 0)])
    return keras.ops.convert_to_numpy(keras.ops.image.resize(x, (size, size))).astype("float32")


def fashion_mnist(args, result, deadline) -> list[dict]:
    """Each net trained to the end with its recipe on Fashion-MNIST; test top-1 and wall time."""
    import keras
    import numpy as np

    from keras_cnn.registry import build, get_spec, recipe_for
    from keras_cnn.training.logits import fitting_on_logits
    from keras_cnn.training.run import compile_model, predict_probabilities

    if result["backend"] != "jax" and not args.dry_run:
        return [{"skipped": "Fashion-MNIST training runs on the JAX backend only (time)"}]
    arrays, source = _fashion_arrays(args)
    rows = []
    for name in DRY_RUN_FASHION_NETS if args.dry_run else FASHION_NETS:
        if time.time() > deadline:
            result["skipped"].append(f"fashion_mnist: {name} and after, time budget spent")
            break
        recipe = recipe_for(name)
        size = max(32, get_spec(name).min_input_size)
        epochs = 1 if args.dry_run else recipe.epochs

        x_train, x_test = (_fit_images(arrays[k], size, recipe.resize) for k in ("x_train", "x_test"))
        y_train = np.eye(10, dtype="float32")[arrays["y_train"]]
        keras.utils.set_random_seed(0)
        _mixed_bfloat16()
        net = build(name, num_classes=10, input_shape=(size, size, 1))
        inputs = keras.Input((size, size, 1))
        augmented = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=0)(inputs) \
            if recipe.augment else inputs
        model = keras.Model(inputs, net(augmented))
        steps = -(-len(x_train) // recipe.batch_size)
        compile_model(model, steps_per_epoch=steps, epochs=epochs, optimizer=recipe.optimizer,
                      learning_rate=recipe.learning_rate, schedule=recipe.schedule,
                      warmup_epochs=min(recipe.warmup_epochs, epochs), weight_decay=recipe.weight_decay,
                      label_smoothing=recipe.label_smoothing, jit_compile=result["backend"] == "jax")
        started = time.time()
        with fitting_on_logits(model):
            history = model.fit(x_train, y_train, batch_size=recipe.batch_size, epochs=epochs, verbose=0,
                                shuffle=True).history
        seconds = time.time() - started
        probabilities = predict_probabilities(net, x_test, 256)
        top1 = float((probabilities.argmax(-1) == arrays["y_test"]).mean())
        rows.append({"model": name, "data": source, "train_images": len(x_train), "test_images": len(x_test),
                     "input": size, "epochs": epochs, "batch_size": recipe.batch_size, "recipe": recipe.why,
                     "loss_by_epoch": [round(float(v), 4) for v in history["loss"]], "test_top1": round(top1, 4),
                     "train_seconds": round(seconds, 1),
                     "published": {"resnet18": 0.949, "mobilenet_v2": 0.950}.get(name)})
        print(json.dumps(rows[-1]), flush=True)
        keras.backend.clear_session()
    return rows


if __name__ == "__main__":
    sys.exit(main())
