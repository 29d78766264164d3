"""``keras-cnn export | tflite-bench``: SavedModel and TFLite files, and their latency."""

from __future__ import annotations

import json
from pathlib import Path

from keras_cnn.atomic import atomic_path
from keras_cnn.cli.common import parse_option, parse_shape
from keras_cnn.deploy.calibration import DEFAULT_COUNT
from keras_cnn.deploy.export import checkpoint_preprocessing, export_saved_model, export_tflite, export_tflite_modes
from keras_cnn.deploy.tflite import inspect_tflite, tflite_latency
from keras_cnn.registry import build, get_spec
from keras_cnn.training.evaluate import default_class_names, export_calibration, load_model_source, run_images
from keras_cnn.weights.keras_file import save_weights


def _build_kwargs(args) -> dict:
    kwargs = {"num_classes": args.num_classes} if args.num_classes else {}
    if args.input_shape:
        kwargs["input_shape"] = parse_shape(args.input_shape)
    if args.weights:
        kwargs["weights"] = args.weights
    for key, value in (parse_option(o) for o in args.option):
        kwargs[key] = value
    return kwargs


def cmd_export(args):
    if args.format == "savedmodel" and args.quantize:
        raise ValueError(f"--quantize {args.quantize} applies to --format tflite; a SavedModel is exported in float32 "
                         "(drop --quantize, or pass --format tflite)")
    calibrating = args.format == "tflite" and args.quantize in ("int8", "all")
    if (args.calibration_data is not None or args.calibration_count is not None) and not calibrating:
        raise ValueError("--calibration-data and --calibration-count apply to --format tflite --quantize int8 (or "
                         f"all), received --format {args.format} --quantize {args.quantize}")
    model, name, config = load_model_source(args.model, args.checkpoint, **_build_kwargs(args))
    classes = list(config.class_names) if config else None
    if classes is None and checkpoint_preprocessing(model):  # a registry name built with --weights
        classes = default_class_names(model, int(model.output_shape[-1]))
    representative = verify = None
    if calibrating:  # int8 is calibrated on images, and checked on the run's test images or those
        representative, verify = export_calibration(model, config, args.calibration_data,
                                                    args.calibration_count or DEFAULT_COUNT)
    elif args.format == "tflite" and args.quantize == "dynamic" and config is not None:
        verify = run_images(config)[1]  # dynamic range calibrates nothing: checked on a run's test images if here
    keep_float = [name.strip() for name in args.keep_float.split(",") if name.strip()] if args.keep_float else None
    if keep_float is not None and (args.format != "tflite" or args.quantize != "int8"):
        raise ValueError(f"--keep-float needs --format tflite --quantize int8, received --format {args.format} "
                         f"--quantize {args.quantize}")
    if (args.op_costs or args.no_speed_check) and keep_float != ["auto"]:
        flag = "--op-costs" if args.op_costs else "--no-speed-check"
        raise ValueError(f"{flag} applies to --keep-float auto, received --keep-float {args.keep_float}")
    automatic = {"op_costs": args.op_costs, "speed_check": not args.no_speed_check} if keep_float == ["auto"] else {}
    if args.int8_io and args.quantize != "int8":
        raise ValueError(f"--int8-io needs --quantize int8, received --quantize {args.quantize}")
    output = Path(args.output or Path("savedmodels") / name)
    if args.format == "savedmodel":
        report = export_saved_model(model, output / "saved_model", class_names=classes)
    elif args.quantize == "all":
        report = export_tflite_modes(model, output, name=name, batch_size=args.batch_size, class_names=classes,
                                     representative_data=representative, verify_data=verify)
    else:
        suffix = f"_{args.quantize}" if args.quantize else ""
        report = export_tflite(model, output / f"{name}{suffix}.tflite", quantize=args.quantize,
                               batch_size=args.batch_size, class_names=classes, int8_io=args.int8_io or False,
                               representative_data=representative if args.quantize == "int8" else None,
                               verify_data=verify if args.quantize in ("int8", "dynamic") else None,
                               keep_float=keep_float, **automatic)
    print(json.dumps(report, indent=2, default=str))
    return 0


def cmd_convert(args):
    """A checkpoint (torchvision, timm, a file) as a Keras file for offline use."""
    output = Path(args.output)
    if not (output.name.endswith(".weights.h5") or output.suffix == ".keras"):
        raise ValueError(f"--output must end in .keras (the whole model) or .weights.h5 (weights only), "
                         f"received {args.output!r}")
    name = get_spec(args.name).name
    model = build(name, **_build_kwargs(args))
    with atomic_path(output) as tmp:
        if output.suffix == ".keras":
            model.save(tmp)
        else:  # Keras' weights format plus the checkpoint's normalization, which build(weights=FILE) puts back
            save_weights(model, tmp, name=name, preprocessing=checkpoint_preprocessing(model))
    report = {"model": model.name, "weights": args.weights, "output": str(output), "params": model.count_params(),
              "input_shape": list(model.input_shape[1:]), "classes": int(model.output_shape[-1]),
              "checkpoint": checkpoint_preprocessing(model)}
    print(json.dumps(report, indent=2))
    return 0


def cmd_tflite_bench(args):

    if not Path(args.file).is_file():
        raise ValueError(f"no such .tflite file: {args.file}")
    try:
        threads = tuple(int(t) for t in args.threads.split(","))
    except ValueError:
        raise ValueError(f"--threads takes comma-separated thread counts (e.g. 1,2), received {args.threads!r}") \
            from None
    latency = tflite_latency(args.file, threads=threads, runs=args.runs, warmup=args.warmup,
                             xnnpack=not args.no_xnnpack)
    graph = inspect_tflite(Path(args.file).read_bytes())
    result = {"file": args.file, **latency,
              "xnnpack": {key: graph[key] for key in ("xnnpack_partitions", "xnnpack_delegated_fraction",
                                                      "ops_outside_xnnpack")}}
    for key, value in latency.items():
        print(f"{key:10s} median {value['median_ms']:.3f} ms  (p10 {value['p10_ms']:.3f}, p90 {value['p90_ms']:.3f})")
    outside = ", ".join(f"{op} x{count}" for op, count in graph["ops_outside_xnnpack"].items()) or "none"
    print(f"XNNPACK    {graph['xnnpack_partitions']} partition(s), {graph['xnnpack_delegated_fraction']:.0%} of "
          f"{graph['op_count']} ops; outside: {outside}")
    print(json.dumps(result))
    return 0


def add_parsers(sub):
    """Add this group's sub-commands to the ``keras-cnn`` parser."""
    p = sub.add_parser("export", help="export a run folder, a .keras file or a registered model to SavedModel or "
                                      "TFLite")
    p.add_argument("model", help="run folder (from train or tune), .keras file, or registry name (random weights)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="of a run folder")
    p.add_argument("--format", choices=("savedmodel", "tflite"), default="tflite")
    p.add_argument("--quantize", choices=("float16", "dynamic", "int8", "all"), default=None,
                   help="all: float32, float16, dynamic and int8 files from one traced graph")
    p.add_argument("--int8-io", nargs="?", const="int8", choices=("int8", "uint8"), default=None,
                   help="with --quantize int8: integer input and output (uint8: a camera's pixels); the report gives "
                        "their scale and zero point")
    p.add_argument("--calibration-data", default=None, metavar="FOLDER_OR_DATASET",
                   help="int8: what the activation ranges are calibrated on: an image folder or file, a data set "
                        "name (its train split: digits, fashion_mnist, a tfds name), 'run' (a run's own training "
                        "images, the default for a run folder) or 'bundled' (crops of keras_cnn's public-domain "
                        "photos, the default otherwise)")
    p.add_argument("--calibration-count", type=int, default=None, metavar="N",
                   help=f"int8: how many calibration images (default {DEFAULT_COUNT})")
    p.add_argument("--keep-float", default=None, metavar="OPS_OR_LAYERS",
                   help="int8: comma-separated TFLite op kinds (DEPTHWISE_CONV_2D, ADD, ...) and/or layer names "
                        "(stem_conv) that stay float32 in the int8 file (QUANTIZE/DEQUANTIZE at the borders); 'auto': "
                        "those int8 makes slower on this CPU, from measured per-op costs, checked against the all-int8 "
                        "and float32 files (the fastest is written)")
    p.add_argument("--op-costs", default=None, metavar="FILE",
                   help="with --keep-float auto: a cost table (JSON) to choose from instead of timing this CPU, e.g. "
                        "one measured on the target device")
    p.add_argument("--no-speed-check", action="store_true",
                   help="with --keep-float auto: write the chosen mixed file without timing it against the others")
    p.add_argument("--batch-size", type=int, default=1, help="fixed batch size of the .tflite file")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--input-shape", default=None, help="H,W,C for a registry name")
    p.add_argument("--weights", default=None,
                   help="for a registry name: imagenet, cifar10, torchvision, timm, akamaster, LIBRARY:TAG or a "
                        "checkpoint file (see convert)")
    p.add_argument("--option", action="append", default=[], help="builder option KEY=VALUE, for a registry name")
    p.add_argument("--output", default=None, help="folder (default savedmodels/<name>/)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("convert", help="a torchvision/timm/akamaster checkpoint as a .keras or .weights.h5 file, for "
                                       "offline use")
    p.add_argument("name", help="registry name")
    p.add_argument("weights", help="imagenet, cifar10, torchvision, timm, akamaster, LIBRARY:TAG, a "
                   ".pth/.pt/.th/.bin/.safetensors file or a timm folder")
    p.add_argument("--output", required=True, help="FILE.keras (whole model) or FILE.weights.h5")
    p.add_argument("--num-classes", type=int, default=None, help="a new classifier (starts fresh)")
    p.add_argument("--input-shape", default=None, help="H,W,C (default: the variant's)")
    p.add_argument("--option", action="append", default=[], help="builder option KEY=VALUE")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("tflite-bench", help="latency of a .tflite file (median of N runs, 1 and 2 threads)")
    p.add_argument("file")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--no-xnnpack", action="store_true", help="builtin kernels only")
    p.set_defaults(func=cmd_tflite_bench)
