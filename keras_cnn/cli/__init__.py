"""The ``keras-cnn`` command.

    keras-cnn list [PATTERN]         registered names (fnmatch pattern, e.g. "resnet*")
    keras-cnn info NAME              paper, reference and measured params/MACs, options of a variant
    keras-cnn models --write docs/MODELS.md   regenerate the table of every variant (measured vs reference)
    keras-cnn summary NAME           Keras summary plus trainable params vs the reference
    keras-cnn export RUN|FILE.keras|NAME --format savedmodel|tflite [--quantize float16|dynamic|int8|all]
    keras-cnn demo                   the main job: train mobilenet_v3_small on the bundled digits
    keras-cnn train NAME --dataset D [--epochs E ...]   train into a run folder (see keras_cnn.training.run)
    keras-cnn evaluate RUN|FILE.keras [--dataset D]     test top-1/top-5 of a run
    keras-cnn predict RUN|FILE.keras IMAGE...           top-5 classes of image files
    keras-cnn explain RUN|FILE.keras|NAME IMAGE... --method filters|features|deconvnet|occlusion|gradcam
    keras-cnn bench train-speed|latency|repvgg [NAME...]   speed vs keras.applications (table + JSON)
    keras-cnn tflite-bench FILE.tflite [--runs N] [--threads 1,2]   latency through the LiteRT interpreter
    keras-cnn tune --family F --dataset D --tuner random|hyperband|bayesian --max-trials N --epochs E
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys

from keras_cnn.cli import analysis, demo, deploy, explain, models, training


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in the command's one-line form: ``keras-cnn: error: ...``, exit 2."""

    def error(self, message):
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        where = f"keras-cnn {command} --help" if command else "keras-cnn --help"
        self.exit(2, f"keras-cnn: error: {' '.join(message.split())} (see {where})\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``keras-cnn`` parser: each command group adds its own sub-commands."""
    parser = _Parser(prog="keras-cnn", description="The classic CNN line in Keras 3.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for group in (models, deploy, demo, training, explain, analysis):
        group.add_parsers(sub)
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
    args, extra = parser.parse_known_args(argv)  # a bad flag prints one "keras-cnn: error: ..." line and exits 2
    trailing = getattr(args, "trailing_positionals", None)  # a command whose files may also follow its flags
    if extra and trailing and not any(item.startswith("-") for item in extra):
        setattr(args, trailing, list(getattr(args, trailing)) + extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except USER_ERRORS as error:
        print(f"keras-cnn: error: {error_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keras-cnn: interrupted", file=sys.stderr)
        return 130


def run():
    """The ``keras-cnn`` executable (and ``python -m keras_cnn.cli``): :func:`main`, then a quick exit.

    Once the command has returned, a process that imported TensorFlow spends another 1-1.5 s (2-core CPU)
    tearing down its ~700k objects at interpreter exit, for nothing. Here the exit handlers registered with
    ``atexit`` run as at a normal exit (logging, temporary folders, JAX's distributed shutdown), the standard
    streams are flushed, and the process ends with the command's exit code without that teardown. An
    exception escaping :func:`main` (``SystemExit`` from argparse included) exits the normal way."""
    code = main()
    code = code if isinstance(code, int) else (0 if code is None else 1)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
