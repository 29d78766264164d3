"""Where MobileNetV3's int8 time goes: single ops, and MobileNetV3-Small cut after each block, as float32 and
int8 files in the folder format of ``benchmarks/int8_latency_files.py``. Time them with its ``time`` step on
the CPU of interest (``results/int8-ops-vnni.json`` is such a run):

    python benchmarks/int8_ops_files.py FOLDER
    python benchmarks/int8_latency_files.py time FOLDER --runs 100 --output ops.json

Op files calibrate on 8 random images; ``*_builtin_*`` files are exported without the int8 rewrites
(Keras' h-swish as it is), every other file as ``export_tflite`` does by default. ``*_explicit_s2d_*`` is
a candidate stem rewrite that was measured and rejected (``keras_cnn/deploy/int8.py``): SPACE_TO_DEPTH(2)
and a 2x2 conv on 12 channels, the same sums as the 3x3/2 conv on 3 channels.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import keras
import numpy as np
from keras import layers

import keras_cnn
from keras_cnn.deploy.export import export_tflite
from keras_cnn.deploy.int8 import hard_swish_int8

sys.path.insert(0, str(Path(__file__).parent))  # run as a script: its sibling's folder format
from int8_latency_files import manifest_file  # noqa: E402


def one_op(shape, make):
    inputs = keras.Input(shape)
    return keras.Model(inputs, make(inputs))


class SpaceToDepth(layers.Layer):
    """``tf.nn.space_to_depth(x, 2)``: the stem rewrite's first op, built in Keras to time it in float32."""

    def call(self, inputs):
        import tensorflow as tf

        return tf.nn.space_to_depth(inputs, 2)

    def compute_output_shape(self, shape):
        return (shape[0], shape[1] // 2, shape[2] // 2, shape[3] * 4)


def squeeze_excite(x):
    gate = layers.GlobalAveragePooling2D(keepdims=True)(x)
    gate = layers.Conv2D(x.shape[-1] // 4, 1, activation="relu")(gate)
    gate = layers.Conv2D(x.shape[-1], 1)(gate)
    return x * (keras.ops.relu6(gate + 3.0) / 6.0)


OPS = {
    "op_stem_same_builtin_224_3to16": ((224, 224, 3), lambda x: layers.Conv2D(16, 3, strides=2, padding="same")(x)),
    "op_stem_pad1_builtin_224_3to32": ((224, 224, 3),
                                       lambda x: layers.Conv2D(32, 3, strides=2)(layers.ZeroPadding2D(1)(x))),
    "op_stem_pad1_explicit_s2d_224_3to32": ((224, 224, 3),
                                            lambda x: layers.Conv2D(32, 2)(SpaceToDepth()(layers.ZeroPadding2D(1)(x)))),
    "op_conv1x1_56_24to72": ((56, 56, 24), lambda x: layers.Conv2D(72, 1)(x)),
    "op_conv1x1_28_96to576": ((28, 28, 96), lambda x: layers.Conv2D(576, 1)(x)),
    "op_conv1x1_7_576to1024": ((7, 7, 576), lambda x: layers.Conv2D(1024, 1)(x)),
    "op_dw3x3_56x72": ((56, 56, 72), lambda x: layers.DepthwiseConv2D(3, padding="same")(x)),
    "op_dw3x3s2_112x16": ((112, 112, 16), lambda x: layers.DepthwiseConv2D(3, strides=2, padding="same")(x)),
    "op_dw5x5_14x576": ((14, 14, 576), lambda x: layers.DepthwiseConv2D(5, padding="same")(x)),
    "op_conv1x1_relu_56x72": ((56, 56, 24), lambda x: layers.Conv2D(72, 1, activation="relu")(x)),
    "op_conv1x1_hswish_rewrite_56x72": ((56, 56, 24), lambda x: hard_swish_int8(layers.Conv2D(72, 1)(x))),
    "op_conv1x1_hswish_builtin_56x72": ((56, 56, 24),
                                        lambda x: layers.Activation("hard_swish")(layers.Conv2D(72, 1)(x))),
    "op_se_28x96": ((28, 28, 96), squeeze_excite),
    "op_add_56x24": ((56, 56, 24), lambda x: layers.Add()([x, layers.Conv2D(24, 1)(x)])),
}


def export(folder: Path, manifest: dict, key: str, model, shape):
    calibration = np.random.default_rng(0).uniform(0, 1, (8, *shape)).astype("float32")
    entry = manifest[key] = {"input": list(shape), "keras_applications": None, "files": {}}
    for mode in ("float32", "int8"):
        path = folder / f"{key}.{mode}.tflite"
        report = export_tflite(model, path, quantize=None if mode == "float32" else "int8",
                               representative_data=calibration, verify=False, int8_rewrite="builtin" not in key)
        entry["files"][f"ours_{mode}"] = manifest_file(path, report)
    print(key, entry["files"]["ours_int8"]["partitions"], flush=True)


def main(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for key, (shape, make) in OPS.items():
        export(folder, manifest, key, one_op(shape, make), shape)
    model = keras_cnn.build("mobilenet_v3_small")
    last = {}  # the last layer of the stem, of each block and of the last conv
    for layer in model.layers:
        match = re.match(r"(stem|block\d+|last_conv)", layer.name)
        if match:
            last[match.group(1)] = layer.name
    for i, cut in enumerate(last.values()):
        export(folder, manifest, f"v3s_cut{i:02d}_{cut}", keras.Model(model.input, model.get_layer(cut).output),
               (224, 224, 3))
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
