"""Export to SavedModel and TFLite, verified, written atomically.

- :func:`export_saved_model`: a SavedModel whose ``serving_default`` signature takes uint8
  images ``[batch, H, W, C]`` (scaled to [0, 1] inside, the normalization every keras_cnn model
  is documented with) and returns class probabilities, plus ``serving_float`` taking float32
  images in [0, 1].
- :func:`export_tflite`: ``quantize`` None (float32), ``"float16"``, ``"dynamic"`` or
  ``"int8"`` (full integer with a representative dataset; ``int8_io=True`` makes the input and
  output int8 too). The model is exported from a float32 clone (mixed-precision models work),
  RepVGG blocks are fused and Conv+BN pairs folded first, the batch size is fixed (static
  shapes), and only builtin ops are allowed: a graph that needs a Flex op fails loudly.

Every export checks itself and writes ``<file>.json`` beside it: ops, Flex and dynamic-shape
ops found, the share of ops XNNPACK takes, file size, max abs difference vs Keras (float) or
top-1 agreement (int8), input spec and normalization, class names. Files are written under a
temporary name and renamed, so a failed export leaves nothing behind.

Example:
    >>> import keras_cnn
    >>> from keras_cnn.deploy.export import export_tflite
    >>> model = keras_cnn.build("mobilenet_v3_small", num_classes=10, input_shape=(64, 64, 3))
    >>> report = export_tflite(model, "savedmodels/mnv3/model.tflite")   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
import tempfile
from pathlib import Path

import keras
import numpy as np

from keras_cnn.atomic import atomic_path, write_bytes, write_text
from keras_cnn.deploy import calibration, mixed_int8
from keras_cnn.deploy.int8 import needs_int8_rewrite, prepare_for_int8
from keras_cnn.deploy.reparameterize import reparameterize
from keras_cnn.deploy.tflite import (  # noqa: F401  (public here too)
    inspect_tflite,
    op_outputs,
    op_precisions,
    run_tflite,
    softmax_inputs,
)
from keras_cnn.layers.input_normalization import InputNormalization

QUANTIZE_MODES = (None, "float16", "dynamic", "int8")
# The float conversions are near-exact, so they are held to a tolerance on the probabilities. The
# quantized ones are lossy: on an untrained net with a saturated softmax, the rounding error
# of dynamic range quantization can flip a confident top-1 (probability difference ~1), so they
# report their top-1 agreement and are held to a tolerance only when the caller gives one.
DEFAULT_TOLERANCE = {None: 1e-4, "float16": 1e-2}
LOSSY_MODES = ("dynamic", "int8")
AUTO = ("auto",)  # keep_float="auto": the latency-aware choice
#: integer input and output of an int8 file: False (float32), True / "int8", or "uint8" (a camera's pixels)
INT8_IO = (False, True, "int8", "uint8")
NORMALIZATION = "float32 in [0, 1] (uint8 / 255)"


class ExportError(RuntimeError):
    """An export that converted but failed its own checks (or could not convert)."""


# --------------------------------------------------------------------------- preparation
def float32_clone(model):
    """A float32 copy of ``model`` (same layers, names and weights), whatever its dtype policy."""
    def clone_layer(layer):
        config = layer.get_config()
        if "dtype" in config:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    for source, target in zip(model.layers, clone.layers):
        if source.weights:
            target.set_weights([np.asarray(w, dtype="float32") for w in source.get_weights()])
    return clone


def deployable(model, fold_batch_norm=True, fuse_repvgg=True):
    """float32 clone -> RepVGG fused -> Conv+BN folded: the graph a phone should run."""
    return reparameterize(float32_clone(model), fold_batch_norm=fold_batch_norm, fuse_repvgg=fuse_repvgg)


def _static_input_shape(model, batch_size):
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"export needs a static input shape, the model has {tuple(model.inputs[0].shape)}; "
                         "build it with input_shape=(H, W, C)")
    return (batch_size, *shape)


def _write_report(path: Path, report: dict):
    write_text(f"{path}.json", json.dumps(report, indent=2, default=str))


def checkpoint_preprocessing(model) -> dict | None:
    """The trained checkpoint's input conventions a model carries (its ``InputNormalization``
    layer: normalization inside the model, and the resize / center-crop to apply before it), or None."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, InputNormalization):
            config = layer.get_config()
            return {"checkpoint": config["checkpoint"], "mean": config["mean"], "std": config["std"],
                    "resize_size": config["resize_size"], "crop_size": config["crop_size"],
                    "interpolation": config["interpolation"], "dataset": config.get("dataset") or "",
                    "normalization": "inside the model"}
    return None


def _sample_batch(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype("float32")


# --------------------------------------------------------------------------- SavedModel
def export_saved_model(model, path, *, include_preprocessing=True, class_names=None, verify=True):
    """Write a SavedModel (uint8 ``serving_default`` + float ``serving_float``) and its report."""
    require_tensorflow_backend("SavedModel export")
    import tensorflow as tf

    path = Path(path)
    clone = float32_clone(model)
    height, width, channels = _static_input_shape(clone, 1)[1:]
    archive = keras.export.ExportArchive()
    archive.track(clone)

    def float_fn(images):
        return clone(images, training=False)

    def uint8_fn(images):
        return clone(tf.cast(images, tf.float32) / 255.0, training=False)

    float_spec = tf.TensorSpec([None, height, width, channels], tf.float32, name="images")
    uint8_spec = tf.TensorSpec([None, height, width, channels], tf.uint8, name="images")
    archive.add_endpoint("serving_float", float_fn, input_signature=[float_spec])
    if include_preprocessing:
        archive.add_endpoint("serving_default", uint8_fn, input_signature=[uint8_spec])
    with atomic_path(path, directory=True) as tmp:
        archive.write_out(str(tmp), verbose=False)
        report = {"format": "saved_model", "path": str(path), "signatures": ["serving_float"] +
                  (["serving_default"] if include_preprocessing else []),
                  "input": {"shape": [None, height, width, channels],
                            "serving_default": "uint8 [0, 255]", "serving_float": NORMALIZATION,
                            "checkpoint": checkpoint_preprocessing(clone)},
                  "class_names": list(class_names) if class_names else None}
        if verify:
            report["max_abs_diff_vs_keras"] = _verify_saved_model(tmp, clone, (4, height, width, channels))
    _write_report(path, report)
    return report


def _verify_saved_model(directory, model, shape):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))
    x = _sample_batch(shape)
    diff = max_abs_diff(loaded.serving_float(tf.constant(x)), _keras_predict(model, x), relative=True)
    if hasattr(loaded, "serving_default"):
        x8 = np.round(x * 255).astype("uint8")
        expected8 = _keras_predict(model, x8.astype("float32") / 255.0)
        diff = max(diff, max_abs_diff(loaded.serving_default(tf.constant(x8)), expected8, relative=True))
    if diff > 1e-4:
        raise ExportError(f"SavedModel outputs differ from Keras by {diff:.3g} (> 1e-4 of max(1, max |output|))")
    return diff


# --------------------------------------------------------------------------- TFLite
def export_tflite(model, path, *, quantize=None, representative_data=None, calibration_count=calibration.DEFAULT_COUNT,
                  batch_size=1, int8_io=False, class_names=None, fold_batch_norm=True, fuse_repvgg=True,
                  int8_rewrite=True, verify=True, verify_data=None, tolerance=None, keep_float=None, op_costs=None,
                  speed_check=True):
    """Convert ``model`` to a ``.tflite`` file, verify it, write it and its JSON report atomically.

    Args:
        quantize: None (float32), ``"float16"``, ``"dynamic"`` (int8 weights) or ``"int8"``.
        representative_data: for int8, what the activation ranges are calibrated on: float32
            images in [0, 1] (an array, or a callable returning one), an image folder or files (read
            as ``keras-cnn predict`` reads them, a checkpoint's center crop included), a data set name
            (``"fashion_mnist"``: its train split), or None / ``"bundled"``: crops of the natural
            photos shipped with keras_cnn (:mod:`keras_cnn.deploy.calibration`). Calibrate on images
            of the domain the file will see: digits calibrating an ImageNet net cost 12 points of top-1.
        calibration_count: how many images a folder, data set or the bundled photos give (200).
        batch_size: the fixed batch dimension of the file.
        int8_io: with ``"int8"``, make the input and output tensors integer too: ``True`` or
            ``"int8"``, or ``"uint8"`` (a camera's pixels); the report's ``quantization.io`` gives
            their scale and zero point (``real = scale * (q - zero_point)``; the input's real
            values are the [0, 1] images).
        verify_data: float images to compare Keras and TFLite on (default: a random batch).
        tolerance: max abs difference of probabilities allowed (default: float32 1e-4, float16
            1e-2; ``"dynamic"`` is checked only when given). The quantized modes report their
            top-1 agreement with Keras on ``verify_data``; check it on real images.
        fold_batch_norm, fuse_repvgg: the deployment rewrites (both on by default; turn them off
            only to measure what they buy).
        int8_rewrite: with ``"int8"``, write h-swish in ops XNNPACK runs in int8
            (:mod:`keras_cnn.deploy.int8`; on by default, off only to measure what it buys).
        keep_float: with ``"int8"``, what stays float32 in an otherwise int8 file (TFLite's selective
            quantization; QUANTIZE/DEQUANTIZE ops at the borders): TFLite op kinds (``"DEPTHWISE_CONV_2D"``,
            ``"ADD"``, ...) and/or layer names of the model (``"stem_conv"``). The report's
            ``quantization.kept_float`` lists them, the file's float and int8 ops per kind and its borders.
            ``"auto"``: keep float32 the ops int8 makes slower on this CPU, chosen from measured per-op
            costs (:mod:`keras_cnn.deploy.mixed_int8`); the mixed, all-int8 and float32 files are then
            timed side by side and the fastest is written (``quantization.mixed`` says which, and why).
            The choice is for the CPU doing the export: for another device, give its ``op_costs``.
        op_costs: with ``keep_float="auto"``, the cost table to choose from (a path or dict saved by
            :class:`keras_cnn.deploy.mixed_int8.CostTable`); default: this machine's, measured as needed.
        speed_check: with ``keep_float="auto"``, time the three files and write the fastest (default);
            False writes the chosen mixed file unchecked (reproducible from ``op_costs``).

    Returns:
        the report dict (also written to ``<path>.json``).
    """
    _check_quantize(quantize)
    if int8_io not in INT8_IO:
        raise ValueError(f"int8_io must be one of {list(INT8_IO)}, received {int8_io!r}")
    if int8_io and quantize != "int8":
        raise ValueError(f"int8_io={int8_io!r} needs quantize='int8', received quantize={quantize!r}")
    keep_float = _check_keep_float(keep_float, quantize, int8_io)
    if op_costs is not None and keep_float != AUTO:
        raise ValueError(f"op_costs applies to keep_float='auto', received keep_float={keep_float!r}")
    rewrite = int8_rewrite and quantize == "int8"
    automatic = None
    if keep_float == AUTO:
        given = mixed_int8.CostTable.load(op_costs) if op_costs is not None else None  # a bad table fails first
        float_file = None
        if speed_check:  # the float32 file the mixed one must beat: what quantize=None writes
            with _traced(model, batch_size, fold_batch_norm, fuse_repvgg) as traced:
                float_file = _float_flatbuffer(traced)
        automatic = {"op_costs": given, "speed_check": speed_check, "float_file": float_file}
    with _traced(model, batch_size, fold_batch_norm, fuse_repvgg, int8_rewrite=rewrite) as traced:
        return _convert_and_write(traced, Path(path), quantize, representative_data=representative_data,
                                  calibration_count=calibration_count, int8_io=int8_io, class_names=class_names,
                                  verify=verify, verify_data=verify_data, tolerance=tolerance, keep_float=keep_float,
                                  automatic=automatic)


def export_tflite_modes(model, folder, *, name=None, modes=QUANTIZE_MODES, representative_data=None,
                        calibration_count=calibration.DEFAULT_COUNT, batch_size=1, class_names=None,
                        fold_batch_norm=True, verify_data=None) -> dict:
    """Every ``modes`` entry as ``<folder>/<name>[_<mode>].tflite`` from one traced graph (cheaper
    than one :func:`export_tflite` call per mode); returns ``{mode: report}``."""
    for mode in modes:
        _check_quantize(mode)
    name = name or model.name
    reports = {}
    # int8 gets its own trace when the model has activations to rewrite for XNNPACK's int8 kernels
    separate = "int8" in modes and needs_int8_rewrite(model)
    groups = [[m for m in modes if m != "int8"], ["int8"]] if separate else [list(modes)]
    for group in (g for g in groups if g):
        with _traced(model, batch_size, fold_batch_norm, int8_rewrite=separate and group == ["int8"]) as traced:
            for mode in group:
                suffix = f"_{mode}" if mode else ""
                reports[mode or "float32"] = _convert_and_write(
                    traced, Path(folder) / f"{name}{suffix}.tflite", mode, representative_data=representative_data,
                    calibration_count=calibration_count, class_names=class_names, verify_data=verify_data)
    return {(mode or "float32"): reports[mode or "float32"] for mode in modes}


def require_tensorflow_backend(what: str):
    """SavedModel and TFLite files are written by TensorFlow: on another Keras backend say so, and how to
    get there (a ``.keras`` file is backend-independent)."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(f"{what} needs the tensorflow backend, and KERAS_BACKEND is {backend!r}: save the model "
                         "(model.save('model.keras')) and export that file in a process with KERAS_BACKEND=tensorflow "
                         "(keras-cnn export model.keras)")


def _check_quantize(quantize):
    require_tensorflow_backend("TFLite export")
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {list(QUANTIZE_MODES)}, received {quantize!r}")


class _Traced(tuple):
    saved = property(lambda self: self[0])
    prepared = property(lambda self: self[1])
    shape = property(lambda self: self[2])
    rewrites = property(lambda self: self[3])  # {"hard_swish": n, "max_abs_diff_vs_original": d} or {}


REWRITE_TOLERANCE = 1e-5


@contextlib.contextmanager
def _traced(model, batch_size, fold_batch_norm, fuse_repvgg=True, int8_rewrite=False):
    """The deployable float32 graph at a fixed input shape, written once as a temporary SavedModel;
    with ``int8_rewrite``, h-swish rewritten for XNNPACK's int8 kernels and checked against the
    unrewritten graph (float outputs within 1e-5)."""
    import tensorflow as tf

    prepared = deployable(model, fold_batch_norm=fold_batch_norm, fuse_repvgg=fuse_repvgg)
    shape = _static_input_shape(prepared, batch_size)
    rewrites = {}
    if int8_rewrite and needs_int8_rewrite(prepared):
        sample = _sample_batch((2, *shape[1:]), seed=1)
        before = _keras_predict(prepared, sample)
        rewrites = prepare_for_int8(prepared)
        diff = max_abs_diff(_keras_predict(prepared, sample), before)
        if diff > REWRITE_TOLERANCE:
            raise ExportError(f"the int8 rewrite {rewrites} changed the float outputs by {diff:.3g} "
                              f"(> {REWRITE_TOLERANCE})")
        rewrites["max_abs_diff_vs_original"] = diff
    serving = _frozen_serving_function(prepared, shape)
    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(tf.Module(), saved, signatures={"serving_default": serving})
        yield _Traced((saved, prepared, shape, rewrites))


def _frozen_serving_function(model, shape):
    """``model``'s inference function at ``shape``, its weights folded in as constants, outputs named
    as the model names them (a features model's level names).

    The converter would freeze the weights itself; a SavedModel that holds them as variables costs
    their checkpoint, the variables' save and restore functions and their tracking, and the
    converter reloads all of that: MobileNetV3-Small at 32x32 took ~7 s to write and ~6 s to convert
    that way, ~1.8 s and ~1.7 s frozen, to the same file."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec(shape, tf.float32, name="images")
    traced = tf.function(lambda images: model(images, training=False), input_signature=[spec]).get_concrete_function()
    frozen = convert_variables_to_constants_v2(traced)
    structure = traced.structured_outputs
    # tf.nest flattens a dict by sorted key; other outputs are output_0, output_1, ... as Keras' export names them
    names = sorted(structure) if isinstance(structure, dict) else [
        f"output_{i}" for i in range(len(tf.nest.flatten(structure)))]

    @tf.function(input_signature=[spec])
    def serve(images):
        return dict(zip(names, tf.nest.flatten(frozen(images))))

    return serve.get_concrete_function()


def _check_keep_float(keep_float, quantize, int8_io) -> tuple:
    if keep_float is None or keep_float == () or keep_float == []:
        return ()
    names = (keep_float,) if isinstance(keep_float, str) else tuple(keep_float)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"keep_float must be 'auto', or op kinds or layer names (strings), received {keep_float!r}")
    if "auto" in names and len(names) > 1:
        raise ValueError(f"keep_float='auto' chooses every op itself: give it alone, received {list(names)}")
    if quantize != "int8":
        raise ValueError(f"keep_float={list(names)} applies to quantize='int8', received quantize={quantize!r}")
    if int8_io:
        raise ValueError(f"keep_float={list(names)} keeps float32 input and output: received int8_io={int8_io!r}")
    return names


def _float_flatbuffer(traced) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(traced.saved)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def _calibrated(converter) -> bytes:
    """The float graph with the calibration's activation ranges recorded, not yet quantized."""
    import tensorflow as tf

    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    converter._experimental_calibrate_only = True
    return converter.convert()


def calibrated_graphs(model, representative_data, *, batch_size=1) -> tuple[bytes, bytes]:
    """The calibrated float32 graph of ``model`` (activation ranges recorded, as ``quantize="int8"`` traces it,
    rewrites included) and the same graph fully quantized: what :func:`keras_cnn.deploy.mixed_int8.measure_costs`
    times, on this machine or, as files, on another one (``benchmarks/int8_latency_files.py``)."""
    import tensorflow as tf
    from tensorflow.lite.python import convert as tflite_convert

    with _traced(model, batch_size, True, int8_rewrite=True) as traced:
        representative, _ = calibration.resolve(representative_data, traced.shape,
                                                checkpoint=checkpoint_preprocessing(traced.prepared))
        converter = tf.lite.TFLiteConverter.from_saved_model(traced.saved)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(representative, traced.shape)
        calibrated = _calibrated(converter)
    return calibrated, tflite_convert.mlir_quantize(calibrated, fully_quantize=False)


def mixed_from_calibrated(calibrated: bytes, all_int8: bytes, op_costs) -> tuple[bytes, mixed_int8.Choice]:
    """The mixed file of a calibrated graph chosen from ``op_costs`` (a :class:`~keras_cnn.deploy.mixed_int8.CostTable`,
    a path or dict of one), and the choice; the fully quantized graph when nothing stays float32."""
    from tensorflow.lite.python import convert as tflite_convert

    choice = mixed_int8.choose(mixed_int8.graph_of(calibrated), mixed_int8.CostTable.load(op_costs))
    if not choice.keep_float:
        return all_int8, choice
    return tflite_convert.mlir_quantize(calibrated, fully_quantize=False,
                                        denylisted_nodes=list(choice.keep_float)), choice


def _latency_aware(converter, float_file, op_costs, speed_check) -> tuple[bytes, dict]:
    """``keep_float="auto"``: the mixed file chosen from per-op costs, checked against the all-int8 and
    float32 files (see :mod:`keras_cnn.deploy.mixed_int8`); returns the file written and the report."""
    from tensorflow.lite.python import convert as tflite_convert

    calibrated = _calibrated(converter)
    all_int8 = tflite_convert.mlir_quantize(calibrated, fully_quantize=False)
    table = mixed_int8.CostTable.load(op_costs)
    if op_costs is None:
        mixed_int8.measure_costs(calibrated, all_int8, table)
    mixed, choice = mixed_from_calibrated(calibrated, all_int8, table)
    files = {"mixed": mixed, "int8": all_int8, **({"float32": float_file} if float_file is not None else {})}
    report = {"machine": table.machine, "cost_table": str(table.path) if table.path else "given",
              "kept_float": [{"node": node, "kind": kind, "float32_ms": f, "int8_ms": q}
                             for node, kind, f, q in choice.reasons],
              "kept_float_ops": len(choice.keep_float), "predicted_ms": choice.predicted_ms,
              "xnnpack_partitions": {key: inspect_tflite(data)["xnnpack_partitions"] for key, data in files.items()}}
    chosen = "mixed"
    if speed_check:
        measured = mixed_int8.time_side_by_side(files, rounds=5, runs=10)
        report["measured_ms"] = {key: round(value, 4) for key, value in measured.items()}
        chosen = min(measured, key=measured.get)
    report["chosen"] = chosen
    report["why"] = {"mixed": "the chosen mix (ops int8 makes slower kept float32) was the fastest file",
                     "int8": "the all-int8 file was faster than the chosen mix",
                     "float32": "the float32 file was faster than any int8 or mixed file on this CPU"}[chosen] \
        if speed_check else "the chosen mix, not timed (speed_check=False)"
    return files[chosen], report


def _selectively_quantized(converter, keep_float) -> tuple[bytes, dict]:
    """Calibrate, then quantize everything to int8 except ``keep_float`` (op kinds, or layer names
    matched against the op output tensors' names), as ``tf.lite.experimental.QuantizationDebugger``
    does with its deny-lists; returns the flatbuffer and what was kept float."""
    from tensorflow.lite.python import convert as tflite_convert  # mlir_quantize: TF's own selective path

    calibrated = _calibrated(converter)
    outputs = op_outputs(calibrated)  # [(op kind, output tensor name)]
    kinds = sorted({kind for kind, _ in outputs})
    ops = [name for name in keep_float if name in kinds]
    layers = [name for name in keep_float if name not in kinds]
    nodes = []
    for layer in layers:
        matched = [tensor for _, tensor in outputs if _names_layer(tensor, layer)]
        if not matched:
            close = difflib.get_close_matches(layer, kinds + sorted(_layer_names(outputs)), n=3)
            raise ValueError(f"keep_float: {layer!r} is neither an op kind of this model ({', '.join(kinds)}) nor a "
                             f"layer whose ops it has{'; close: ' + ', '.join(close) if close else ''}")
        nodes += matched
    flatbuffer = tflite_convert.mlir_quantize(calibrated, fully_quantize=False, denylisted_ops=ops or None,
                                              denylisted_nodes=nodes or None)
    return flatbuffer, {"op_kinds": ops, "layers": layers, "nodes": len(nodes)}


def _names_layer(tensor_name: str, layer: str) -> bool:
    """Whether an op's output tensor name (``model_1/stem_conv_1/convolution;...``) comes from ``layer``."""
    return any(segment == layer or re.fullmatch(rf"{re.escape(layer)}_\d+", segment)
               for part in tensor_name.split(";") for segment in part.split("/"))


def _layer_names(outputs) -> set:
    return {re.sub(r"_\d+$", "", part.split("/")[1]) for _, tensor in outputs
            for part in tensor.split(";") if part.count("/") >= 2}


def _convert_and_write(traced, path, quantize, *, representative_data=None, calibration_count=calibration.DEFAULT_COUNT,
                       int8_io=False, class_names=None, verify=True, verify_data=None, tolerance=None, keep_float=(),
                       automatic=None):
    import tensorflow as tf

    shape = traced.shape
    calibrated_on = None
    if quantize == "int8":
        representative_data, calibrated_on = calibration.resolve(
            representative_data, shape, count=calibration_count, checkpoint=checkpoint_preprocessing(traced.prepared))
    converter = tf.lite.TFLiteConverter.from_saved_model(traced.saved)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(representative_data, shape)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            io_type = tf.uint8 if int8_io == "uint8" else tf.int8
            converter.inference_input_type = io_type
            converter.inference_output_type = io_type
    kept = mixed = None
    try:
        if keep_float == AUTO:
            flatbuffer, mixed = _latency_aware(converter, automatic["float_file"], automatic["op_costs"],
                                               automatic["speed_check"])
        elif keep_float:
            flatbuffer, kept = _selectively_quantized(converter, keep_float)
        else:
            flatbuffer = converter.convert()
    except ValueError:
        raise
    except Exception as error:
        raise ExportError(f"TFLite conversion with builtin ops only failed: {error}") from error
    report = inspect_tflite(flatbuffer)
    report.update({"format": "tflite", "path": str(path), "quantize": quantize or "float32",
                   "size_bytes": len(flatbuffer), "input": {"shape": list(shape), "normalization": NORMALIZATION,
                                                          "int8_io": "int8" if int8_io is True else int8_io,
                                                          "checkpoint": checkpoint_preprocessing(traced.prepared)},
                   "class_names": list(class_names) if class_names else None})
    if quantize == "int8":
        report["quantization"] = _int8_details(flatbuffer, representative_data, calibrated_on, shape, traced.rewrites)
        report["quantization"]["op_precisions"] = op_precisions(flatbuffer)
        if kept is not None:
            report["quantization"]["kept_float"] = kept
        if mixed is not None:
            report["quantization"]["mixed"] = mixed
    if report["flex_ops"] or report["dynamic_shape_ops"]:
        raise ExportError(f"{path.name}: Flex ops {report['flex_ops']} / dynamic-shape ops "
                          f"{report['dynamic_shape_ops']} in the converted graph; nothing was written")
    if verify:
        x = _sample_batch((max(8, shape[0]), *shape[1:])) if verify_data is None else np.asarray(verify_data, "float32")
        expected = _keras_predict(traced.prepared, x)
        got = run_tflite(flatbuffer, x)
        limit = tolerance if tolerance is not None else DEFAULT_TOLERANCE.get(quantize)
        report["verification"] = verification = _verification(
            traced.prepared, flatbuffer, x, expected, got,
            "random uniform [0, 1] images (seed 0)" if verify_data is None else "images given by the caller")
        if isinstance(expected, dict):  # a features model: every map, by name
            report["outputs"] = {name: list(value.shape[1:]) for name, value in expected.items()}
        elif quantize in LOSSY_MODES:
            report["top1_agreement_vs_keras"] = verification["top1_agreement"]
        if quantize != "int8":
            report["max_abs_diff_vs_keras"] = max_abs_diff(got, expected)
            diff = report["max_relative_diff_vs_keras"] = max_abs_diff(got, expected, relative=True)
            if limit is not None and diff > limit:
                raise ExportError(f"{path.name}: TFLite outputs differ from Keras by {diff:.3g} of max(1, max "
                                  f"|output|) (> {limit})")
            logits_diff = verification.get("logits_relative_diff")
            if limit is not None and logits_diff is not None and logits_diff > limit:
                raise ExportError(f"{path.name}: TFLite logits differ from Keras' by {logits_diff:.3g} of their "
                                  f"largest magnitude (> {limit}); {verification['compared']}")
    write_bytes(path, flatbuffer)
    _write_report(path, report)
    return report


#: Keras' outputs closer than this across classes (on every image) cannot tell a right file from a wrong one
UNINFORMATIVE_SPREAD = 1e-4


def _verification(model, flatbuffer, x, expected, got, inputs: str) -> dict:
    """What the check of a file against Keras compared, and whether that could have failed.

    Class probabilities that are (nearly) the same for every class, as an untrained net's often are
    (a random MobileNetV3-Small gives exactly 0.1 for all ten), are equal in any file of the right
    shape, so then the logits (the last softmax's input, read from the file's intermediate tensor) are
    compared instead, relative to their own largest magnitude: float32 keeps ~7 digits at any scale."""
    entry = {"inputs": inputs, "images": int(len(x))}
    if isinstance(expected, dict):
        entry.update(compared="every output feature map, relative to max(1, its largest magnitude)", conclusive=True)
        return entry
    spread = float(np.max(expected.max(-1) - expected.min(-1)))
    entry["output_spread"] = spread  # the largest gap between two classes' outputs on one image
    entry["top1_agreement"] = float(np.mean(expected.argmax(-1) == got.argmax(-1)))
    if spread > UNINFORMATIVE_SPREAD:
        entry.update(compared="the outputs (class probabilities)", conclusive=True)
        return entry
    expected_logits, got_logits = _keras_logits(model, x), softmax_inputs(flatbuffer, x)
    if expected_logits is None or got_logits is None:
        entry.update(compared="the outputs (class probabilities)", conclusive=False,
                     why=f"Keras' outputs differ by at most {spread:.2g} between classes, so they agree with any file "
                         "of the right shape, and the model has no softmax whose logits could be compared instead")
        return entry
    scale = max(float(np.abs(expected_logits).max()), np.finfo("float32").tiny)
    entry.update(compared=f"the logits (the softmax's input), relative to their largest magnitude ({scale:.3g}): "
                          f"Keras' probabilities differ by at most {spread:.2g} between classes on these images",
                 conclusive=True, logits_relative_diff=float(np.abs(got_logits - expected_logits).max() / scale),
                 top1_agreement=float(np.mean(expected_logits.argmax(-1) == got_logits.argmax(-1))))
    return entry


def _keras_logits(model, x):
    """``model``'s logits on ``x``: its one softmax output layer run linear for the call, or None."""
    layers = [tensor._keras_history.operation for tensor in model.outputs]
    layers = [layer for layer in layers if getattr(getattr(layer, "activation", None), "__name__", None) == "softmax"]
    if len(model.outputs) != 1 or len(layers) != 1:
        return None
    softmax = layers[0].activation
    layers[0].activation = keras.activations.linear
    try:
        return _keras_predict(model, x)
    finally:
        layers[0].activation = softmax


def _int8_details(flatbuffer, representative_data, calibrated_on, shape, rewrites) -> dict:
    """What an int8 report states about how the file was quantized."""
    from keras_cnn.deploy.tflite import io_quantization

    images = _calibration_count(representative_data, shape)
    return {"weights": "int8, per output channel (conv, depthwise and dense kernels)",
            "activations": "int8, per tensor, ranges calibrated on the representative images",
            "biases": "int32",
            "calibration_images": images,
            "representative_data": calibrated_on,
            "io": io_quantization(flatbuffer),
            "rewrites": rewrites or {}}


def _calibration_count(data, shape):
    if callable(data):
        return None  # a generator: not counted
    return len(data) - len(data) % shape[0]


def _keras_predict(model, x):
    """``model`` on ``x`` in batches of 64: an array, or a dict of arrays for a model with dict outputs."""
    parts = [model(x[i:i + 64], training=False) for i in range(0, len(x), 64)]
    if isinstance(parts[0], dict):
        return {name: np.concatenate([keras.ops.convert_to_numpy(p[name]) for p in parts]) for name in parts[0]}
    return np.concatenate([keras.ops.convert_to_numpy(p) for p in parts])


def max_abs_diff(got, expected, relative=False) -> float:
    """max |got - expected| over an array, or over every output of dict outputs (matched by name).

    ``relative``: each output's difference divided by ``max(1, max |expected|)``. Probabilities
    are compared as they are; feature maps, whose values reach 1e4 in an untrained backbone, are
    held to the same 1e-4 as a share of their own scale (float32 carries ~7 digits)."""
    if isinstance(expected, dict):
        got = {name: got[name] for name in expected}  # a missing name is a KeyError: the export lost an output
        return max(max_abs_diff(got[name], expected[name], relative) for name in expected)
    expected = np.asarray(expected)
    diff = float(np.abs(np.asarray(got) - expected).max())
    return diff / max(1.0, float(np.abs(expected).max())) if relative else diff


def _representative(data, shape):
    """The converter's representative dataset: batches of ``shape[0]`` of the resolved calibration images."""

    def generator():
        source = data() if callable(data) else data
        for i in range(0, len(source) - shape[0] + 1, shape[0]):
            yield [np.asarray(source[i:i + shape[0]], "float32")]
    return generator
