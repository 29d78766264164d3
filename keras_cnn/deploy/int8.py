"""Graph rewrites that keep an int8 ``.tflite`` file on XNNPACK's int8 kernels.

A phone's CPU runs a ``.tflite`` file through XNNPACK, and an int8 file is faster than float only
when XNNPACK takes its ops. Measured on the MobileNetV3s (LiteRT 2.x XNNPACK delegate; the export
reports count the partitions), the float graph is one XNNPACK partition, but in int8:

- **HARD_SWISH** has no int8 kernel in the delegate: each of MobileNetV3-Small's 19 h-swish ops
  stays on the builtin kernels and cuts the graph, 21 partitions in all (MobileNetV3-Large: 23),
  and the int8 file runs slower than the float one.
- Written as ``x * relu6(x + 3) / 6`` (Keras' own formula), the converter fuses it back into
  HARD_SWISH. Written with a clip (``x * clip(x / 6 + 0.5, 0, 1)``) it becomes MINIMUM, RELU and
  MUL ops that the delegate refuses in int8 (38 partitions). As ``(x / 6) * relu6(x + 3)`` it is not
  fused, but the ``x + 3`` ADD is refused wherever the input's scale is under 1/1024 of the
  output's (XNNPACK's limit for int8 ADD; small activation ranges in MobileNetV3's late blocks).
- :func:`hard_swish_int8`, ``x * (relu6(depthwise_1x1(x, ones) + 3) / 6)``, computes ``x + 3`` as a
  1x1 depthwise convolution with unit kernel and bias 3 (RELU6 fused): an op XNNPACK runs in int8
  at any scale, no more work than the ADD, and no pattern the converter fuses. The gate is scaled
  to [0, 1] before the product, so the product is requantized once, as in HARD_SWISH; the order
  ``(x / 6) * relu6(...)`` requantizes ``x / 6`` as well and cost MobileNetV3-Large 0.8 points of
  int8 top-1 on digits (0.969 against 0.975 for this form and for HARD_SWISH itself). The float
  outputs equal the original's within float rounding (tests hold them to 1e-5). With it,
  MobileNetV3's int8 graph is one XNNPACK partition up to the final SOFTMAX.
- **SOFTMAX** has no int8 kernel in XNNPACK either; it is the last op, so it costs one hand-over,
  and the DEQUANTIZE of a float output forms a second small partition after it. No rewrite
  computes a softmax from int8 ops exactly; ``int8_io=True`` (a camera pipeline's uint8/int8
  input and output) drops the QUANTIZE/DEQUANTIZE pair.
- **AVERAGE_POOL_2D** has no int8 kernel in the delegate either: ShuffleNet v1's stride-2 shortcut
  (a 3x3/2 average pool after a 1-pixel zero pad, PyTorch's ``count_include_pad``) cut its int8
  graph into 5 partitions. :func:`average_pool_int8` computes a ``"valid"`` average pool as a
  depthwise convolution with a constant ``1 / (kh * kw)`` kernel, the same sum, which XNNPACK runs
  in int8. (A ``"same"`` pool averages over fewer cells at the borders; it is left as it is.)
- **The first convolution** (3x3, stride 2, on the 3 input channels) is the op int8 slows most on a
  VNNI x86 CPU: 0.62-1.05 ms against 0.16-0.22 ms in float at 224x224 (XNNPACK has a dedicated float
  kernel for it), most of MobileNetV3-Small's int8 deficit there (benchmarks/RESULTS.md). A rewrite
  as SPACE_TO_DEPTH(2) plus a 2x2 convolution on 12 channels (the same sums) was measured and is not
  used: it made that conv slower still in int8 (0.68 -> 1.05 ms) and in float (0.23 -> 0.95 ms), and
  16 of the 17 mobile nets' int8 files 6-64% slower (results/int8-stem-rewrite-vnni.json).
- The hard-sigmoid gates of the squeeze-excite blocks need nothing: the converter folds their
  ``+ 3`` into the gate convolution's bias and RELU6, and XNNPACK runs the rest.

The rewrites apply to int8 files only: in float, XNNPACK runs HARD_SWISH as one fused op, faster
than three, and AVERAGE_POOL_2D as it is. :func:`prepare_for_int8` returns how many layers of each
kind it rewrote, for the report.

Quantization (the TFLite converter's full-integer mode, recorded in every int8 report): weights
per-channel int8 (per output channel of each conv / dense kernel), activations per-tensor int8 with
ranges calibrated on the representative images, int32 biases.

Example:
    >>> import keras_cnn
    >>> from keras_cnn.deploy.export import export_tflite
    >>> model = keras_cnn.build("mobilenet_v3_small", num_classes=10, input_shape=(64, 64, 3))
    >>> report = export_tflite(model, "mnv3.tflite", quantize="int8")   # doctest: +SKIP
    >>> report["xnnpack_partitions"], report["int8_rewrites"]            # doctest: +SKIP
    (2, {'hard_swish': 19})
"""

from __future__ import annotations

import keras
from keras import ops

SIXTH = 1.0 / 6.0


def hard_swish_int8(x):
    """h-swish, ``x * relu6(x + 3) / 6``, in ops XNNPACK runs in int8 (see the module docstring).

    Rank-2 inputs (a dense layer's) go through a ``[batch, 1, 1, channels]`` view."""
    if len(x.shape) == 2:
        channels = x.shape[-1]
        return ops.reshape(hard_swish_int8(ops.reshape(x, (-1, 1, 1, channels))), (-1, channels))
    if len(x.shape) != 4:
        return x * ops.relu6(x + 3.0) * SIXTH
    unit = ops.ones((1, 1, x.shape[-1], 1), dtype=x.dtype)
    shifted = ops.depthwise_conv(x, unit, strides=1, padding="valid") + 3.0
    return x * (ops.relu6(shifted) * SIXTH)


def average_pool_int8(layer):
    """The ``call`` of a ``"valid"`` ``AveragePooling2D`` ``layer`` as a depthwise convolution with a
    constant ``1 / (kh * kw)`` kernel (see the module docstring)."""
    height, width = layer.pool_size

    def call(inputs):
        kernel = ops.full((height, width, inputs.shape[-1], 1), 1.0 / (height * width), dtype=inputs.dtype)
        return ops.depthwise_conv(inputs, kernel, strides=layer.strides, padding="valid")
    return call


def _rewritable(layer) -> str | None:
    if getattr(layer, "activation", None) is keras.activations.hard_swish:
        return "hard_swish"
    if (type(layer) is keras.layers.AveragePooling2D and layer.padding == "valid"
            and layer.data_format == "channels_last"):
        return "average_pool"
    return None


def prepare_for_int8(model) -> dict:
    """Rewrite, in place, every h-swish activation of ``model`` (nested layers included) as
    :func:`hard_swish_int8` and every ``"valid"`` average pool as :func:`average_pool_int8`. Use it on
    a deployment copy (``export.deployable``), never on the model a user trains. Returns
    ``{"hard_swish": count, "average_pool": count}`` (the kinds it rewrote)."""
    counts = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        kind = _rewritable(layer)
        if kind == "hard_swish":
            layer.activation = hard_swish_int8
        elif kind == "average_pool":
            layer.call = average_pool_int8(layer)
        if kind:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def needs_int8_rewrite(model) -> bool:
    return any(_rewritable(layer) for layer in model._flatten_layers(include_self=False, recursive=True))
