"""Measurements: trainable parameters and multiply-accumulates (MACs) of a built model.

MACs count one multiply-add per weight use in convolutions (plain, grouped, depthwise,
separable), dense layers and the custom layers that hold convolutions (squeeze-excite, RepVGG
blocks, LeNet's partial C3), at the model's input size; bias adds, BatchNorm, activations and
pooling are not counted (the convention of the reference tables).

Example:
    >>> import keras_cnn
    >>> from keras_cnn.bench import count_macs
    >>> round(count_macs(keras_cnn.build("resnet50")) / 1e9, 2)
    4.09
"""

from __future__ import annotations

import numpy as np


def count_trainable(model) -> int:
    """Trainable parameter count (BatchNorm moving statistics excluded)."""
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


def _spatial(shape):
    return int(np.prod([d for d in shape[1:-1]]))


def layer_macs(layer, input_shape, output_shape, deployed=False) -> int:
    """MACs of one layer call with the given static shapes (``deployed``: a RepVGG block counts
    as the single 3x3 convolution it fuses into)."""
    import keras

    from keras_cnn.layers import PartialConv2D, RepVGGBlock, SqueezeExcite

    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        depthwise = _spatial(output_shape) * input_shape[-1] * layer.depth_multiplier * kh * kw
        return depthwise + _spatial(output_shape) * input_shape[-1] * layer.depth_multiplier * output_shape[-1]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _spatial(output_shape) * output_shape[-1] * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        return _spatial(output_shape) * output_shape[-1] * kh * kw * input_shape[-1] // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(output_shape[1:-1] or [1])) * input_shape[-1] * output_shape[-1]
    if isinstance(layer, SqueezeExcite):
        squeeze = layer.reduce.filters
        return 2 * input_shape[-1] * squeeze
    if isinstance(layer, RepVGGBlock):
        per_pixel = _spatial(output_shape) * output_shape[-1] * input_shape[-1] // layer.groups
        return per_pixel * (9 if layer.deploy or deployed else 10)  # 3x3 (+ the 1x1 branch at train time)
    if isinstance(layer, PartialConv2D):
        connections = sum(len(row) for row in layer.connection_table)
        return _spatial(output_shape) * connections * layer.kernel_size**2
    return 0


def count_macs(model, deployed=False) -> int:
    """Multiply-accumulates of one forward pass of ``model`` at its input size (``deployed``:
    count RepVGG blocks as fused, as :func:`keras_cnn.reparameterize` would make them)."""
    total = 0
    for layer in model.layers:
        for node in layer._inbound_nodes:
            inputs = [t for t in node.input_tensors]
            outputs = node.output_tensors
            if not inputs or not outputs:
                continue
            total += layer_macs(layer, tuple(inputs[0].shape), tuple(outputs[0].shape), deployed)
    return int(total)


def tflite_latency(flatbuffer_or_path, *, threads=(1, 2), runs=50, warmup=10, xnnpack=True) -> dict:
    """Median (and 10th/90th percentile) milliseconds of one ``invoke`` of a ``.tflite`` file
    through the ``ai_edge_litert`` interpreter, per thread count, after ``warmup`` runs."""
    import time
    from pathlib import Path

    import numpy as np

    from keras_cnn.export import _interpreter

    flatbuffer = Path(flatbuffer_or_path).read_bytes() if isinstance(flatbuffer_or_path, (str, Path)) \
        else flatbuffer_or_path
    source = flatbuffer_or_path if isinstance(flatbuffer_or_path, (str, Path)) else "the flatbuffer"
    results = {}
    for count in threads:
        try:
            interpreter = _interpreter(flatbuffer, num_threads=count, xnnpack=xnnpack)
        except ValueError as error:  # the interpreter's verifier: "The model is not a valid Flatbuffer buffer"
            raise ValueError(f"{source} is not a .tflite model ({' '.join(str(error).split())})") from error
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        sample = np.random.default_rng(0).random(detail["shape"])
        if detail["dtype"] == np.float32:
            sample = sample.astype("float32")
        else:
            sample = (sample * 255 - 128).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], sample)
        for _ in range(warmup):
            interpreter.invoke()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            interpreter.invoke()
            times.append((time.perf_counter() - start) * 1e3)
        results[f"{count}_thread{'s' if count > 1 else ''}"] = {
            "median_ms": round(float(np.median(times)), 4), "p10_ms": round(float(np.percentile(times, 10)), 4),
            "p90_ms": round(float(np.percentile(times, 90)), 4), "runs": runs, "warmup": warmup,
            "xnnpack": xnnpack}
    return results
