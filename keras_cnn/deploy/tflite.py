"""The TFLite runtime: run, inspect and time ``.tflite`` files through LiteRT (``ai_edge_litert``).

Example:
    >>> from keras_cnn.deploy.tflite import inspect_tflite, run_tflite, tflite_latency
    >>> report = inspect_tflite(open("savedmodels/lenet/lenet.tflite", "rb").read())   # doctest: +SKIP
    >>> report["xnnpack_delegated_fraction"]                                            # doctest: +SKIP
    1.0
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

DYNAMIC_SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK")


def make_interpreter(flatbuffer, num_threads=None, xnnpack=True):
    """A LiteRT interpreter of ``flatbuffer`` (XNNPACK on unless ``xnnpack=False``)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return Interpreter(model_content=flatbuffer, num_threads=num_threads, experimental_op_resolver_type=resolver)


def inspect_tflite(flatbuffer) -> dict:
    """Op list, Flex and dynamic-shape ops, the share of ops the XNNPACK delegate takes, its number
    of partitions (each a hand-over between XNNPACK and the builtin kernels), and the ops left outside.

    With a delegate applied, the interpreter keeps the original nodes and appends one DELEGATE
    node per partition; an original node belongs to a partition when it lies on a path from
    that DELEGATE node's outputs back to its inputs.
    """
    interpreter = make_interpreter(flatbuffer, xnnpack=True)
    interpreter.allocate_tensors()
    nodes = interpreter._get_ops_details()
    original = [n for n in nodes if n["op_name"] != "DELEGATE"]
    producer = {int(t): n["index"] for n in original for t in n["outputs"]}
    inputs_of = {n["index"]: [int(t) for t in n["inputs"] if t >= 0] for n in original}
    delegated = set()
    for node in (n for n in nodes if n["op_name"] == "DELEGATE"):
        boundary = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:
            tensor = stack.pop()
            if tensor in boundary or tensor not in producer or producer[tensor] in delegated:
                continue
            delegated.add(producer[tensor])
            stack.extend(inputs_of[producer[tensor]])
    ops = [n["op_name"] for n in original]
    counts = {name: ops.count(name) for name in sorted(set(ops))}
    outside = [n["op_name"] for n in original if n["index"] not in delegated]
    return {"ops": counts, "op_count": len(ops),
            "flex_ops": sorted({o for o in ops if o.startswith("Flex") or o == "CUSTOM"}),
            "dynamic_shape_ops": sorted({o for o in ops if o in DYNAMIC_SHAPE_OPS}),
            "xnnpack_delegated_fraction": round(len(delegated) / max(1, len(ops)), 4),
            "xnnpack_partitions": sum(1 for n in nodes if n["op_name"] == "DELEGATE"),
            "ops_not_delegated": sorted(set(outside)),
            "ops_outside_xnnpack": {name: outside.count(name) for name in sorted(set(outside))}}


def _ops_and_tensors(flatbuffer):
    interpreter = make_interpreter(flatbuffer, xnnpack=False)
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    return [op for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"], tensors


def op_outputs(flatbuffer) -> list[tuple[str, str]]:
    """``(op kind, name of its first output tensor)`` for every op of a file, in order."""
    ops, tensors = _ops_and_tensors(flatbuffer)
    return [(op["op_name"], tensors[int(op["outputs"][0])]["name"]) for op in ops if len(op["outputs"])]


def op_precisions(flatbuffer) -> dict:
    """``{op kind: {"int8": n, "float32": n}}`` by the dtype of each op's first input, and ``borders``: the
    QUANTIZE and DEQUANTIZE ops, each a hand-over between float32 and int8."""
    ops, tensors = _ops_and_tensors(flatbuffer)
    table, borders = {}, 0
    for op in ops:
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            borders += 1
            continue
        dtype = np.dtype(tensors[int(op["inputs"][0])]["dtype"]).name if len(op["inputs"]) else "none"
        kind = "float32" if dtype == "float32" else "int8" if dtype in ("int8", "uint8", "int16") else dtype
        table.setdefault(op["op_name"], {}).setdefault(kind, 0)
        table[op["op_name"]][kind] += 1
    return {"ops": dict(sorted(table.items())), "borders": borders}


def io_quantization(flatbuffer) -> dict:
    """dtype, shape, and for an integer tensor its scale and zero point (``real = scale * (q - zero)``),
    of the file's input and output: what a camera pipeline feeding int8 needs."""
    interpreter = make_interpreter(flatbuffer, xnnpack=False)

    def describe(detail):
        scale, zero = detail["quantization"]
        entry = {"dtype": np.dtype(detail["dtype"]).name, "shape": [int(d) for d in detail["shape"]]}
        if entry["dtype"] != "float32":
            entry.update(scale=float(scale), zero_point=int(zero))
        return entry

    return {"input": describe(interpreter.get_input_details()[0]),
            "output": describe(interpreter.get_output_details()[0])}


def output_details(interpreter) -> dict:
    """``{output name: tensor details}`` of a file with several outputs, named as the SavedModel
    signature it was converted from names them (a features model: ``"P3"``, ``"P4"``, ...)."""
    signatures = interpreter.get_signature_list()
    if not signatures:
        return {str(d["index"]): d for d in interpreter.get_output_details()}
    runner = interpreter.get_signature_runner(next(iter(signatures)))
    return dict(sorted(runner.get_output_details().items()))


def run_tflite(flatbuffer_or_path, images, num_threads=None):
    """Run a ``.tflite`` model on float images in [0, 1], batch by batch; returns float outputs
    (int8 inputs/outputs are quantized/dequantized with the file's own scales): an array, or for a
    file with several outputs a dict ``{output name: array}``."""
    flatbuffer = Path(flatbuffer_or_path).read_bytes() if isinstance(flatbuffer_or_path, (str, Path)) \
        else flatbuffer_or_path
    interpreter = make_interpreter(flatbuffer, num_threads=num_threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    several = len(interpreter.get_output_details()) > 1
    outs = output_details(interpreter) if several else {None: interpreter.get_output_details()[0]}
    batch = inp["shape"][0]
    outputs = {name: [] for name in outs}
    for chunk, pad in _input_batches(images, inp):
        interpreter.set_tensor(inp["index"], chunk)
        interpreter.invoke()
        for name, out in outs.items():
            result = _dequantized(interpreter.get_tensor(out["index"]), out)
            outputs[name].append(result[:batch - pad] if pad else result)
    results = {name: np.concatenate(parts) for name, parts in outputs.items()}
    return results if several else results[None]


def softmax_inputs(flatbuffer, images) -> np.ndarray | None:
    """The logits of a classifier file: the input of its last SOFTMAX op on ``images`` (float images in
    [0, 1], run batch by batch with the builtin kernels, every tensor kept; int8 logits dequantized),
    or None for a file without a SOFTMAX."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=flatbuffer, experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    softmaxes = [op for op in interpreter._get_ops_details() if op["op_name"] == "SOFTMAX"]
    if not softmaxes:
        return None
    logits = next(d for d in interpreter.get_tensor_details() if d["index"] == int(softmaxes[-1]["inputs"][0]))
    inp = interpreter.get_input_details()[0]
    batch, parts = inp["shape"][0], []
    for chunk, pad in _input_batches(images, inp):
        interpreter.set_tensor(inp["index"], chunk)
        interpreter.invoke()
        result = _dequantized(interpreter.get_tensor(logits["index"]).reshape(batch, -1), logits)
        parts.append(result[:batch - pad] if pad else result)
    return np.concatenate(parts)


def _input_batches(images, inp):
    """``(chunk, pad)`` batches of float images for an input tensor of fixed batch size (the last one padded
    by repeating its last image), quantized with the tensor's scale when it is integer."""
    batch = inp["shape"][0]
    images = np.asarray(images, "float32")
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            limits = np.iinfo(inp["dtype"])
            chunk = np.clip(np.round(chunk / scale + zero), limits.min, limits.max).astype(inp["dtype"])
        yield chunk, pad


def _dequantized(values, detail):
    if detail["dtype"] == np.float32:
        return values
    scale, zero = detail["quantization"]
    return (values.astype("float32") - zero) * scale


def tflite_latency(flatbuffer_or_path, *, threads=(1, 2), runs=50, warmup=10, xnnpack=True) -> dict:
    """Median (and 10th/90th percentile) milliseconds of one ``invoke`` of a ``.tflite`` file
    through the ``ai_edge_litert`` interpreter, per thread count, after ``warmup`` runs (``runs`` >= 1,
    ``warmup`` >= 0, each thread count >= 1)."""
    for key, value, low in (("runs", runs, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{key} must be an integer >= {low}, received {value!r}")
    if not threads or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in threads):
        raise ValueError(f"threads must be thread counts >= 1, received {threads!r}")
    flatbuffer = Path(flatbuffer_or_path).read_bytes() if isinstance(flatbuffer_or_path, (str, Path)) \
        else flatbuffer_or_path
    source = flatbuffer_or_path if isinstance(flatbuffer_or_path, (str, Path)) else "the flatbuffer"
    results = {}
    for count in threads:
        try:
            interpreter = make_interpreter(flatbuffer, num_threads=count, xnnpack=xnnpack)
        except ValueError as error:  # the interpreter's verifier: "The model is not a valid Flatbuffer buffer"
            raise ValueError(f"{source} is not a .tflite model ({' '.join(str(error).split())})") from error
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        sample = np.random.default_rng(0).random(detail["shape"])
        if detail["dtype"] == np.float32:
            sample = sample.astype("float32")
        else:
            limits = np.iinfo(detail["dtype"])
            sample = (limits.min + sample * (limits.max - limits.min)).astype(detail["dtype"])
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
