"""``keras-cnn explain``: what a network learned, as pictures (see :mod:`keras_cnn.explain`)."""

from __future__ import annotations

import json

from keras_cnn.cli.common import parse_option, parse_shape
from keras_cnn.explain.run import METHODS, explain


def cmd_explain(args):
    kwargs = {"num_classes": args.num_classes} if args.num_classes else {}
    if args.input_shape:
        kwargs["input_shape"] = parse_shape(args.input_shape)
    if args.weights:
        kwargs["weights"] = args.weights
    kwargs.update(parse_option(o) for o in args.option)
    layers = [name for value in args.layer for name in value.split(",") if name]
    index = explain(args.model, args.images, args.method, layers=layers or None, class_=args.class_,
                    output=args.output, checkpoint=args.checkpoint, top=args.top, size=args.size, stride=args.stride,
                    **kwargs)
    for picture in index["pictures"]:
        print(f"{index['output']}/{picture['file']}")
    print(json.dumps({key: value for key, value in index.items() if key != "pictures"} |
                     {"pictures": len(index["pictures"]), "index": f"{index['output']}/index.json"}))
    return 0


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"expected a positive integer, received {text!r}")
    return value


def add_parsers(sub):
    """Add ``explain`` to the ``keras-cnn`` parser."""
    p = sub.add_parser("explain", help="pictures of what a net learned: filters, feature maps, deconvnet, occlusion, "
                                       "Grad-CAM (PNGs and index.json)")
    p.add_argument("model", help="run folder, .keras file, or registry name (random weights, or --weights)")
    p.add_argument("images", nargs="*", help="image files or folders (read as predict reads them; filters needs none)")
    p.add_argument("--method", choices=METHODS, default="gradcam",
                   help="filters: first-layer filters; features: strongest feature maps per layer; deconvnet: "
                        "top activations projected to pixels (ZFNet Fig. 2); occlusion: class probability under a "
                        "sliding grey square (ZFNet Fig. 7); gradcam: Grad-CAM heatmap (default)")
    p.add_argument("--layer", action="append", default=[], metavar="L",
                   help="a feature level (P2, P3, ...: keras-cnn info NAME lists them) or a layer name; repeat or "
                        "comma-separate (default: every level; gradcam: the deepest map of at least 2x2)")
    p.add_argument("--class", dest="class_", default=None, metavar="C",
                   help="occlusion, gradcam: class index or name (default: the predicted class)")
    p.add_argument("--top", type=_positive, default=None, help="maps (features, 16) or activations (deconvnet, 9)")
    p.add_argument("--size", type=_positive, default=None, help="occlusion: square side in pixels (1/7 of the image)")
    p.add_argument("--stride", type=_positive, default=None, help="occlusion: step in pixels (half the size)")
    p.add_argument("--output", default=None, help="folder (default explanations/<name>/)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="of a run folder")
    p.add_argument("--weights", default=None, help="for a registry name: imagenet, torchvision, timm, LIBRARY:TAG or "
                                                   "a checkpoint file (see convert)")
    p.add_argument("--num-classes", type=int, default=None, help="for a registry name")
    p.add_argument("--input-shape", default=None, help="H,W,C for a registry name")
    p.add_argument("--option", action="append", default=[], help="builder option KEY=VALUE, for a registry name")
    # images may come after the flags too (explain NAME --weights W photo.jpg): argparse leaves them over
    p.set_defaults(func=cmd_explain, trailing_positionals="images")
