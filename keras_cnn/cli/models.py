"""``keras-cnn list | info | models | summary``: the registry and its reference numbers."""

from __future__ import annotations

import json
import sys

from keras_cnn.analysis.counting import count_trainable
from keras_cnn.analysis.model_table import DEFAULT_PATH, generate, measure, model_info, render, table_row
from keras_cnn.cli.common import parse_shape
from keras_cnn.registry import build, get_spec, list_models


def cmd_list(args):
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
    info = model_info(args.name, measure=not args.no_measure)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if key == "features" and value:
            value = ", ".join(f"{f['level']} {f['layer']} ({f['channels']} ch, stride {f['stride']})" for f in value)
        if value not in (None, "", [], {}):
            print(f"{key:{width}s}  {value}")
    return 0


def cmd_models(args):
    if (args.write or args.write_default) and args.pattern is not None:
        flag = f"--write {args.write}" if args.write else "--write-default"
        raise ValueError(f"{flag} writes the whole table, so it takes no PATTERN (received {args.pattern!r}); "
                         f"drop the pattern, or print its rows with: keras-cnn models {args.pattern!r}")
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


def cmd_summary(args):
    spec = get_spec(args.name)
    kwargs = {}
    if args.num_classes:
        kwargs["num_classes"] = args.num_classes
    if args.input_shape:
        kwargs["input_shape"] = parse_shape(args.input_shape)
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


def add_parsers(sub):
    """Add this group's sub-commands to the ``keras-cnn`` parser."""
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
    p.add_argument("--write", default=None, metavar="PATH",
                   help="write the whole table to PATH (docs/MODELS.md); takes no PATTERN")
    p.add_argument("--write-default", action="store_true", help="write docs/MODELS.md in the current folder "
                   "(a checkout's root)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("summary", help="Keras summary and trainable params vs the reference")
    p.add_argument("name")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--input-shape", default=None, help="H,W,C, e.g. 64,64,1")
    p.set_defaults(func=cmd_summary)
