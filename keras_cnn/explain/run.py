"""``keras-cnn explain``: open a model as ``predict`` / ``export`` do, read images as ``predict`` does, compute a
view of :mod:`keras_cnn.explain.methods` per image (and layer), and write its PNGs and an ``index.json``.

Example:
    >>> from keras_cnn.explain import explain
    >>> index = explain("runs/lenet5_digits", ["seven.png"], "gradcam", output="explanations/lenet5")
    >>> index["pictures"][0]["file"]
    'seven_gradcam_P2.png'
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import keras
import numpy as np

from keras_cnn.atomic import write_bytes, write_text
from keras_cnn.data import image_files
from keras_cnn.explain import methods, pictures, targets
from keras_cnn.training.evaluate import input_config, load_inputs, load_model_source

METHODS = ("filters", "features", "deconvnet", "occlusion", "gradcam")
#: How many maps / activations a picture shows by default.
DEFAULT_TOP = {"features": 16, "deconvnet": 9}


def check_method(method) -> str:
    if method in METHODS:
        return method
    close = difflib.get_close_matches(str(method), METHODS, n=2, cutoff=0.5)
    suggestion = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown method {method!r}.{suggestion} Allowed: {', '.join(METHODS)}")


def _layers_for(model, method, layers):
    """``[(layer name, level)]`` the method looks at (None: its default)."""
    if method == "occlusion":
        if layers:
            raise ValueError(f"--layer / layers= does not apply to occlusion (it hides parts of the image and reads "
                             f"the output), received {list(layers)}")
        return [(None, None)]
    levels = targets.feature_levels(model)
    if layers:
        return [targets.resolve_layer(model, layer, levels) for layer in layers]
    if method == "filters":
        return [(targets.first_conv_layer(model).name, None)]
    if method == "gradcam":
        chosen = targets.default_gradcam_layer(levels)
        return [(chosen["layer"], chosen["level"])]
    return [(level["layer"], level["level"]) for level in levels]  # features, deconvnet: every level


def _stems(files) -> list[str]:
    stems = [Path(f).stem for f in files]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{i:02d}_{stem}" for i, stem in enumerate(stems)]


def _peak(heatmap) -> list[int]:
    return [int(v) for v in np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)]


def explain(source, images=(), method="gradcam", *, layers=None, class_=None, output=None, checkpoint="best",
            top=None, size=None, stride=None, **build_kwargs) -> dict:
    """Write ``method``'s pictures of ``source`` on ``images`` into ``output`` and return the index written
    beside them (``index.json``: every picture with its image, layer, class and probability).

    Args:
        source: a run folder, a ``.keras`` file, or a registry name (built with ``build_kwargs``, e.g.
            ``weights="torchvision"``; random weights without).
        images: image files or folders, read as ``keras-cnn predict`` reads them (``filters`` needs none).
        method: ``"filters"`` (first-layer filters, ZFNet Fig. 6), ``"features"`` (the strongest feature maps
            of each layer), ``"deconvnet"`` (ZFNet Fig. 2), ``"occlusion"`` (ZFNet Fig. 7) or ``"gradcam"``
            (Selvaraju et al. 2017); see :mod:`keras_cnn.explain.methods`.
        layers: level names (``"P3"``) or layer names; default: every feature level (features, deconvnet), the
            deepest level with a map of at least 2x2 (gradcam), the first convolution (filters).
        class_: the class to explain (occlusion, gradcam), an index or a class name; default the predicted one.
        output: the folder (default ``explanations/<name>``); files in it are replaced one by one, atomically.
        top: maps (features, default 16) or activations (deconvnet, default 9) per picture.
        size, stride: the occluding square's side and step in pixels (default 1/7 of the image, half of that).
    """
    method = check_method(method)
    model, name, config = load_model_source(source, checkpoint, **build_kwargs)
    config = input_config(model, config)
    files = image_files(images) if images else []
    if method != "filters" and not files:
        raise ValueError(f"{method} explains images: pass at least one image file or folder")
    if top is not None and (not isinstance(top, int) or top < 1):
        raise ValueError(f"top must be a positive integer, received {top!r}")
    inputs = load_inputs(model, config, files) if files else np.zeros((0,))
    chosen_layers = _layers_for(model, method, layers)
    class_index = targets.resolve_class(config.class_names, class_) if class_ is not None else None
    if class_index is not None and method not in ("occlusion", "gradcam"):
        raise ValueError(f"--class / class_= applies to occlusion and gradcam, not to {method}")
    count = top or DEFAULT_TOP.get(method)

    rendered, entries = [], []
    if method == "filters":
        for layer, _ in chosen_layers:
            found = methods.filters(model, layer)
            file = f"filters_{found.layer}.png"
            rendered.append((file, pictures.filters_png(found, name)))
            entries.append({"file": file, "layer": found.layer, "filters": int(found.kernels.shape[0]),
                            "kernel": list(found.kernels.shape[1:])})
    probabilities = methods.predict_probabilities(model, inputs) if len(files) and method != "filters" else []
    for file_path, stem, image, probs in zip(files, _stems(files), inputs, probabilities):
        predicted = int(np.argmax(probs))
        base = {"image": str(file_path), "predicted": config.class_names[predicted],
                "predicted_probability": round(float(probs[predicted]), 4)}
        for layer, _level in chosen_layers:
            if method == "features":
                found = methods.feature_maps(model, image, layer, top=count)
                png, extra = pictures.features_png(image, found, name), {"channels": found.channels.tolist()}
            elif method == "deconvnet":
                found = methods.deconvnet(model, image, layer, top=count)
                png = pictures.deconvnet_png(image, found, name)
                extra = {"channels": found.channels.tolist(), "positions": found.positions.tolist(),
                         "boxes": found.boxes.tolist()}
            elif method == "occlusion":
                found = methods.occlusion(model, image, class_index, size=size, stride=stride)
                class_name = config.class_names[found.class_index]
                png = pictures.occlusion_png(image, found, class_name, name)
                extra = {"class": class_name, "class_index": found.class_index,
                         "probability": round(found.base_probability, 4), "size": found.size, "stride": found.stride,
                         "peak": _peak(found.heatmap), "lowest_probability": round(float(found.probability.min()), 4)}
            else:
                found = methods.gradcam(model, image, class_index, layer)
                class_name = config.class_names[found.class_index]
                png = pictures.gradcam_png(image, found, class_name, name)
                extra = {"class": class_name, "class_index": found.class_index,
                         "probability": round(found.probability, 4), "peak": _peak(found.heatmap)}
            where = getattr(found, "level", None) or getattr(found, "layer", None)
            file = f"{stem}_{method}{'_' + where if where else ''}.png"
            rendered.append((file, png))
            entries.append({"file": file, **base, "layer": getattr(found, "layer", None),
                            "level": getattr(found, "level", None), **extra})

    folder = Path(output) if output is not None else Path("explanations") / name
    for file, data in rendered:
        write_bytes(folder / file, data)
    index = {"source": str(source), "model": model.name, "backend": keras.backend.backend(),
             "input_shape": list(model.input_shape[1:]), "output": str(folder), "method": method,
             "pictures": [{"method": method, **entry} for entry in entries]}
    write_text(folder / "index.json", json.dumps(_merged(folder / "index.json", index), indent=2) + "\n")
    return index


def _merged(path: Path, index: dict) -> dict:
    """``index`` plus the pictures an earlier call listed in the same folder's ``index.json`` (of the same model
    and source) that are still there and not rewritten now: the folder's index lists every picture in it."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        earlier = None
    if not isinstance(earlier, dict) or (earlier.get("source"), earlier.get("model")) != (index["source"],
                                                                                         index["model"]):
        return {key: value for key, value in index.items() if key != "method"}
    written = {entry["file"] for entry in index["pictures"]}
    kept = [entry for entry in earlier.get("pictures", []) if isinstance(entry, dict) and
            entry.get("file") not in written and (path.parent / str(entry.get("file"))).is_file()]
    return {key: value for key, value in index.items() if key != "method"} | {"pictures": kept + index["pictures"]}
