"""``keras-cnn bench``: speed against keras.applications, side by side."""

from __future__ import annotations

import json

from keras_cnn.analysis import speed


def cmd_bench(args):
    settings = {"image_size": args.image_size, "rounds": args.rounds}
    if args.kind == "train-speed":
        names = args.names or sorted(speed.KERAS_APPLICATIONS)
        settings.update(batch_size=args.batch_size, steps=args.steps, jit_compile=args.jit_compile)
        rows = speed.train_speed(names, progress=lambda row: print(json.dumps(row), flush=True), **settings)
    elif args.kind == "latency":
        names = args.names or ["mobilenet_v2", "mobilenet_v3_small"]
        settings.update(runs=args.runs, threads=args.threads, modes=tuple(args.modes.split(",")),
                        keras_predict=not args.no_keras_predict)
        rows = speed.latency(names, **settings)
    else:
        settings.update(runs=args.runs, threads=args.threads)
        rows = speed.repvgg_speedup(*(args.names or ["repvgg_a0"])[:1], **settings)
    print(speed.markdown_table(rows))
    summary = speed.int8_summary(rows) if args.kind == "latency" else []
    if summary:
        print("\nint8 vs float32 (speed-up = float32 ms / int8 ms):\n" + speed.markdown_table(summary))
    if args.json:
        extra = {"int8_summary": summary} if summary else {}
        print(f"wrote {speed.write_json(args.kind, rows, args.json, names=args.names, **settings, **extra)}")
    return 0


def add_parsers(sub):
    """Add this group's sub-commands to the ``keras-cnn`` parser."""
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
    p.add_argument("--modes", default="float32,int8", help="latency: TFLite modes, comma-separated: float32, float16, "
                                                          "dynamic, int8, mixed (int8 with --keep-float auto)")
    p.add_argument("--no-keras-predict", action="store_true", help="latency: time the TFLite files only")
    p.add_argument("--jit-compile", action="store_true", help="train-speed: XLA-compile both train steps")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the rows and settings as JSON")
    p.set_defaults(func=cmd_bench)
