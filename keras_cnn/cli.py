"""The ``keras-cnn`` command.

    keras-cnn list [PATTERN]         registered names (fnmatch pattern, e.g. "resnet*")
    keras-cnn info NAME              paper, reference and measured params/MACs, options of a variant
    keras-cnn models --write docs/MODELS.md   regenerate the table of every variant (measured vs reference)
    keras-cnn summary NAME           Keras summary plus trainable params vs the reference
    keras-cnn export RUN|FILE.keras|NAME --format savedmodel|tflite [--quantize float16|dynamic|int8|all]
    keras-cnn demo                   the main job: train mobilenet_v3_small on the bundled digits
    keras-cnn train NAME --dataset D [--epochs E ...]   train into a run folder (see keras_cnn.training)
    keras-cnn evaluate RUN|FILE.keras [--dataset D]     test top-1/top-5 of a run
    keras-cnn predict RUN|FILE.keras IMAGE...           top-5 classes of image files
    keras-cnn bench train-speed|latency|repvgg [NAME...]   speed vs keras.applications (table + JSON)
    keras-cnn tflite-bench FILE.tflite [--runs N] [--threads 1,2]   latency through the LiteRT interpreter
    keras-cnn tune --family F --dataset D --tuner random|hyperband|bayesian --max-trials N --epochs E
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def cmd_list(args):
    from keras_cnn.registry import get_spec, list_models

    names = list_models(args.pattern)
    if not names:
        print(f"no registered model matches {args.pattern!r}", file=sys.stderr)
        return 1
    for name in names:
        spec = get_spec(name)
        params = f"{spec.params:,}" if spec.params else "-"
        print(f"{name:24s} {spec.family:14s} {params:>14s}  {spec.input_shape}")
    return 0


def cmd_info(args):
    from keras_cnn.registry import model_info

    info = model_info(args.name, measure=not args.no_measure)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if value not in (None, "", [], {}):
            print(f"{key:{width}s}  {value}")
    return 0


def cmd_models(args):
    from keras_cnn.model_table import DEFAULT_PATH, generate, measure, render, table_row
    from keras_cnn.registry import list_models

    if args.write or args.write_default:
        path = generate(args.write or DEFAULT_PATH, progress=lambda name, m: print(table_row(name, m), flush=True))
        print(f"wrote {path}")
        return 0
    names = list_models(args.pattern)
    if not names:
        print(f"no registered model matches {args.pattern!r}", file=sys.stderr)
        return 1
    print(render({n: measure(n) for n in list_models()}) if args.pattern is None else
          "\n".join(table_row(n, measure(n)) for n in names))
    return 0


def cmd_bench(args):
    from keras_cnn import speed

    settings = {"image_size": args.image_size, "rounds": args.rounds}
    if args.kind == "train-speed":
        names = args.names or sorted(speed.KERAS_APPLICATIONS)
        settings.update(batch_size=args.batch_size, steps=args.steps, jit_compile=args.jit_compile)
        rows = speed.train_speed(names, progress=lambda row: print(json.dumps(row), flush=True), **settings)
    elif args.kind == "latency":
        names = args.names or ["mobilenet_v2", "mobilenet_v3_small"]
        settings.update(runs=args.runs, threads=args.threads, modes=tuple(args.modes.split(",")))
        rows = speed.latency(names, **settings)
    else:
        settings.update(runs=args.runs, threads=args.threads)
        rows = speed.repvgg_speedup(*(args.names or ["repvgg_a0"])[:1], **settings)
    print(speed.markdown_table(rows))
    if args.json:
        print(f"wrote {speed.write_json(args.kind, rows, args.json, names=args.names, **settings)}")
    return 0


def cmd_summary(args):
    from keras_cnn.bench import count_trainable
    from keras_cnn.registry import build, get_spec

    spec = get_spec(args.name)
    kwargs = {}
    if args.num_classes:
        kwargs["num_classes"] = args.num_classes
    if args.input_shape:
        kwargs["input_shape"] = _parse_shape(args.input_shape)
    model = build(spec.name, **kwargs)
    model.summary(line_length=110)
    trainable = count_trainable(model)
    print(f"trainable params: {trainable:,}")
    at_default = not kwargs or (kwargs.get("input_shape", spec.input_shape) == spec.input_shape
                                and kwargs.get("num_classes", spec.num_classes) == spec.num_classes)
    if spec.params:
        verdict = ("matches" if trainable == spec.params else f"differs by {trainable - spec.params:+,}")
        where = "" if at_default else " (reference holds at the default input and classes)"
        print(f"reference params: {spec.params:,} ({spec.follows or spec.paper}): {verdict}{where}")
    return 0


def cmd_demo(args):
    from keras_cnn.demo import run_demo

    run_demo(args.model, epochs=args.epochs, output_dir=args.output, export=not args.no_export)
    return 0


def cmd_export(args):
    from pathlib import Path

    from keras_cnn.export import export_saved_model, export_tflite, export_tflite_modes
    from keras_cnn.inference import calibration_images, load_model_source

    kwargs = {"num_classes": args.num_classes} if args.num_classes else {}
    if args.input_shape:
        kwargs["input_shape"] = _parse_shape(args.input_shape)
    model, name, config = load_model_source(args.model, args.checkpoint, **kwargs)
    classes = list(config.class_names) if config else None
    representative = verify = None
    if config is not None and args.format == "tflite" and args.quantize in ("int8", "dynamic", "all"):
        representative, verify = calibration_images(config)  # the run's own images, when they are here
    output = Path(args.output or Path("savedmodels") / name)
    if args.format == "savedmodel":
        report = export_saved_model(model, output / "saved_model", class_names=classes)
    elif args.quantize == "all":
        report = export_tflite_modes(model, output, name=name, batch_size=args.batch_size, class_names=classes,
                                     representative_data=representative, verify_data=verify)
    else:
        suffix = f"_{args.quantize}" if args.quantize else ""
        report = export_tflite(model, output / f"{name}{suffix}.tflite", quantize=args.quantize,
                               batch_size=args.batch_size, class_names=classes,
                               representative_data=representative if args.quantize == "int8" else None,
                               verify_data=verify if args.quantize in ("int8", "dynamic") else None)
    print(json.dumps(report, indent=2, default=str))
    return 0


def _parse_shape(text):
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3:
        raise ValueError(f"--input-shape takes H,W,C (e.g. 64,64,1), received {text!r}")
    return shape


def cmd_train(args):
    from keras_cnn.training import train

    settings = {key: getattr(args, key) for key in (
        "epochs", "batch_size", "image_size", "learning_rate", "optimizer", "schedule", "warmup_epochs",
        "label_smoothing", "weight_decay", "ema", "mixup", "cutmix", "mixed_precision", "strategy", "limit", "data_dir",
        "seed")}
    settings["jit_compile"] = True if args.jit_compile else None
    settings["augment"] = False if args.no_augment else None
    if args.option:
        settings["model_options"] = dict(_parse_option(o) for o in args.option)
    if args.mirrored_cpus:
        from keras_cnn.distribute import split_cpu

        split_cpu(args.mirrored_cpus)
    train(args.name, args.dataset, output=args.output, resume=args.resume, verbose=args.verbose, **settings)
    return 0


def _parse_option(text):
    if "=" not in text:
        raise ValueError(f"--option takes KEY=VALUE (e.g. alpha=0.5), received {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def cmd_evaluate(args):
    from keras_cnn.inference import evaluate

    print(json.dumps(evaluate(args.run, args.dataset, split=args.split, checkpoint=args.checkpoint,
                              data_dir=args.data_dir)))
    return 0


def cmd_predict(args):
    from keras_cnn.data import image_files
    from keras_cnn.inference import predict

    if args.top < 1:
        raise ValueError(f"--top must be a positive integer, received {args.top}")
    files = image_files(args.images)  # folders expand to the images in them
    for file, top in zip(files, predict(args.run, files, top=args.top, checkpoint=args.checkpoint)):
        ranked = ", ".join(f"{entry['class']} {entry['probability']:.3f}" for entry in top)
        print(f"{file}: {ranked}")
    return 0


def cmd_tflite_bench(args):
    from pathlib import Path

    from keras_cnn.bench import tflite_latency

    if not Path(args.file).is_file():
        raise ValueError(f"no such .tflite file: {args.file}")
    threads = tuple(int(t) for t in args.threads.split(","))
    result = {"file": args.file, **tflite_latency(args.file, threads=threads, runs=args.runs, warmup=args.warmup,
                                                   xnnpack=not args.no_xnnpack)}
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{key:10s} median {value['median_ms']:.3f} ms  (p10 {value['p10_ms']:.3f}, p90 {value['p90_ms']:.3f})")
    print(json.dumps(result))
    return 0


def cmd_tune(args):
    from keras_cnn.tuning import tune

    fixed = dict(_parse_option(o) for o in args.fix)
    choices = {key: [json.loads(v) if _is_json(v) else v for v in values.split(",")]
               for key, values in (_split_choice(c) for c in args.choice)}
    family = args.family if "," not in args.family else args.family.split(",")
    tune(family, args.dataset, tuner=args.tuner, max_trials=args.max_trials, epochs=args.epochs,
         directory=args.directory, overwrite=args.overwrite, fixed=fixed, choices=choices, image_size=args.image_size,
         batch_size=args.batch_size, limit=args.limit, data_dir=args.data_dir, seed=args.seed, verbose=args.verbose)
    return 0


def _split_choice(text):
    if "=" not in text:
        raise ValueError(f"--choice takes KEY=V1,V2,... (e.g. alpha=0.5,1.0), received {text!r}")
    return text.split("=", 1)


def _is_json(text):
    try:
        json.loads(text)
        return True
    except json.JSONDecodeError:
        return False


def add_train_arguments(p):
    """The ``keras-cnn train`` flags (defaults: the model's recipe, see keras_cnn.recipes)."""
    p.add_argument("--dataset", default="digits", help="digits, fashion_mnist, mnist, folder, or a tfds name")
    p.add_argument("--data-dir", default=None, help="IDX files or an image folder (one sub-folder per class)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None, help="default: the data's size, at least the model's minimum")
    p.add_argument("--lr", dest="learning_rate", type=float, default=None)
    p.add_argument("--optimizer", choices=("sgd", "adamw", "adam"), default=None)
    p.add_argument("--schedule", choices=("cosine", "step", "constant"), default=None)
    p.add_argument("--warmup", dest="warmup_epochs", type=int, default=None, help="warm-up epochs")
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--ema", type=float, default=None,
                   help="momentum of a moving average of the weights, evaluated and saved (e.g. 0.999; 0: off)")
    p.add_argument("--mixup", type=float, default=None, help="MixUp alpha (0: off)")
    p.add_argument("--cutmix", type=float, default=None, help="CutMix factor (0: off)")
    p.add_argument("--no-augment", action="store_true", help="no random translation")
    p.add_argument("--mixed-precision", nargs="?", const="auto", choices=("auto", "float16", "bfloat16"),
                   default=None, help="mixed_float16 on GPU, mixed_bfloat16 on CPU (auto)")
    p.add_argument("--jit-compile", action="store_true", help="XLA-compile the train step")
    p.add_argument("--strategy", choices=("none", "mirrored", "data_parallel"), default=None)
    p.add_argument("--mirrored-cpus", type=int, default=0, help="split the CPU into N logical devices (testing)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--option", action="append", default=[], help="builder option KEY=VALUE, e.g. alpha=0.5")
    p.add_argument("--output", default=None, help="run folder (default runs/<name>_<dataset>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its last epoch")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in the command's one-line form: ``keras-cnn: error: ...``, exit 2."""

    def error(self, message):
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        where = f"keras-cnn {command} --help" if command else "keras-cnn --help"
        self.exit(2, f"keras-cnn: error: {' '.join(message.split())} (see {where})\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="keras-cnn", description="The classic CNN line in Keras 3.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="list registered model names")
    p.add_argument("pattern", nargs="?", default=None, help='fnmatch pattern, e.g. "resnet*"')
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="paper, reference numbers and options of a model")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-measure", action="store_true", help="reference numbers only (do not build the model)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("models", help="table of every variant: measured vs reference params and MACs")
    p.add_argument("pattern", nargs="?", default=None, help='print only these rows (fnmatch, e.g. "resnet*")')
    p.add_argument("--write", default=None, metavar="PATH", help="write the whole table to PATH (docs/MODELS.md)")
    p.add_argument("--write-default", action="store_true", help="write docs/MODELS.md in the current folder "
                   "(a checkout's root)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("summary", help="Keras summary and trainable params vs the reference")
    p.add_argument("name")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--input-shape", default=None, help="H,W,C, e.g. 64,64,1")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("export", help="export a run folder, a .keras file or a registered model to SavedModel or "
                                      "TFLite")
    p.add_argument("model", help="run folder (from train or tune), .keras file, or registry name (random weights)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="of a run folder")
    p.add_argument("--format", choices=("savedmodel", "tflite"), default="tflite")
    p.add_argument("--quantize", choices=("float16", "dynamic", "int8", "all"), default=None,
                   help="all: float32, float16, dynamic and int8 files from one traced graph")
    p.add_argument("--batch-size", type=int, default=1, help="fixed batch size of the .tflite file")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--input-shape", default=None, help="H,W,C for a registry name")
    p.add_argument("--output", default=None, help="folder (default savedmodels/<name>/)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo", help="train mobilenet_v3_small on the bundled digits and report test accuracy")
    p.add_argument("--model", default="mobilenet_v3_small")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--output", default="savedmodels", help="folder for the trained model and exports")
    p.add_argument("--no-export", action="store_true", help="skip the SavedModel / int8 TFLite export")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train a model into a run folder (checkpoints, logs, plots, summary)")
    p.add_argument("name")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test top-1/top-5 of a run folder or a .keras file")
    p.add_argument("run", help="run folder or .keras file")
    p.add_argument("--dataset", default=None, help="default: the run's own data set")
    p.add_argument("--split", default=None, help="default: the run's test split")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="top-5 classes (with names) of image files")
    p.add_argument("run", help="run folder or .keras file")
    p.add_argument("images", nargs="+", help="image files, or folders of images")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="speed vs keras.applications: train-speed, latency, repvgg (table + JSON)")
    p.add_argument("kind", choices=("train-speed", "latency", "repvgg"))
    p.add_argument("names", nargs="*", help="registry names (default: every shared architecture / the mobile pair "
                                             "/ repvgg_a0)")
    p.add_argument("--image-size", type=int, default=None, help="default: each model's own input size")
    p.add_argument("--batch-size", type=int, default=8, help="train-speed batch")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (median taken)")
    p.add_argument("--steps", type=int, default=2, help="train-speed: steps per round")
    p.add_argument("--runs", type=int, default=20, help="latency: runs per round")
    p.add_argument("--threads", type=int, default=1, help="TFLite threads")
    p.add_argument("--modes", default="float32,int8", help="latency: TFLite modes")
    p.add_argument("--jit-compile", action="store_true", help="train-speed: XLA-compile both train steps")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the rows and settings as JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("tflite-bench", help="latency of a .tflite file (median of N runs, 1 and 2 threads)")
    p.add_argument("file")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--no-xnnpack", action="store_true", help="builtin kernels only")
    p.set_defaults(func=cmd_tflite_bench)

    p = sub.add_parser("tune", help="Keras Tuner search over a family; writes results.csv and best.keras")
    p.add_argument("--family", required=True, help="a family (mobilenet, resnet, ...) or comma-separated names")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--tuner", choices=("random", "hyperband", "bayesian"), default="random")
    p.add_argument("--max-trials", type=int, default=10)
    p.add_argument("--epochs", type=int, default=5, help="epochs per trial (Hyperband: the most per trial)")
    p.add_argument("--directory", default=None, help="default runs/tune/<family>_<dataset>")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming the search")
    p.add_argument("--fix", action="append", default=[], help="pin a hyperparameter KEY=VALUE, e.g. alpha=0.5")
    p.add_argument("--choice", action="append", default=[], help="narrow KEY=V1,V2, e.g. variant=mobilenet_v2")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0)
    p.set_defaults(func=cmd_tune)
    return parser


#: Errors a user's input can cause, reported in one line with exit code 2 (never a traceback).
USER_ERRORS = (ValueError, OSError, EOFError)


def error_line(error) -> str:
    """One line for the terminal: the message with its line breaks folded, at most 600 characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 600 else text[:597] + "..."


def main(argv=None) -> int:
    _quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)  # a bad flag prints one "keras-cnn: error: ..." line and exits 2
    try:
        return args.func(args)
    except USER_ERRORS as error:
        print(f"keras-cnn: error: {error_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keras-cnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
