"""Argument parsing shared by the command groups."""

from __future__ import annotations

import json


def parse_shape(text):
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3:
        raise ValueError(f"--input-shape takes H,W,C (e.g. 64,64,1), received {text!r}")
    return shape


def parse_option(text):
    if "=" not in text:
        raise ValueError(f"--option takes KEY=VALUE (e.g. alpha=0.5), received {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def split_choice(text):
    if "=" not in text:
        raise ValueError(f"--choice takes KEY=V1,V2,... (e.g. alpha=0.5,1.0), received {text!r}")
    return text.split("=", 1)


def is_json(text):
    try:
        json.loads(text)
        return True
    except json.JSONDecodeError:
        return False
