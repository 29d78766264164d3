"""The pictures: each view of :mod:`keras_cnn.explain.methods` as one PNG a person reads at a glance.

Every function returns the PNG's bytes (matplotlib, Agg; colours quantized to a 256-colour palette, so a
picture is tens of kilobytes); :func:`keras_cnn.explain.run.explain` writes them atomically. :func:`overlay`
gives the heatmap-on-image array itself, for notebooks.
"""

from __future__ import annotations

import io
import math

import numpy as np

HEATMAP = "jet"  # Grad-CAM's and ZFNet's colour scale: blue (nothing) to red (strongest)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    """The figure as a palette PNG (256 colours: a quarter of the RGB file's size, the same to the eye)."""
    from PIL import Image

    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _show(axis, image, **kwargs):
    image = np.clip(np.asarray(image, "float32"), 0, 1)
    if image.ndim == 3 and image.shape[-1] == 1:
        axis.imshow(image[:, :, 0], cmap="gray", vmin=0, vmax=1, **kwargs)
    elif image.ndim == 3 and image.shape[-1] != 3:
        axis.imshow(image.mean(axis=-1), cmap="gray", vmin=0, vmax=1, **kwargs)
    else:
        axis.imshow(image, **kwargs)
    axis.set_axis_off()


def overlay(image, heatmap, alpha=0.45) -> np.ndarray:
    """``heatmap`` ``(H, W)`` in [0, 1], coloured blue to red, blended over ``image`` ``(H, W, C)`` in [0, 1]:
    float32 RGB ``(H, W, 3)``."""
    from matplotlib import colormaps

    image = np.asarray(image, "float32")
    rgb = np.repeat(image.mean(axis=-1, keepdims=True), 3, axis=-1) if image.shape[-1] != 3 else image
    colour = colormaps[HEATMAP](np.clip(heatmap, 0, 1))[..., :3].astype("float32")
    return np.clip((1 - alpha) * rgb + alpha * colour, 0, 1)


def _figure(columns, rows=1, width=2.2, height=2.2, title=None):
    plt = _pyplot()
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows + (0.35 if title else 0)),
                             dpi=80, squeeze=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, axes


def filters_png(found, model_name) -> bytes:
    """The grid of ``found`` (:class:`~keras_cnn.explain.methods.Filters`)."""
    count, kh, kw, channels = found.kernels.shape
    side = min(8.0, max(3.0, found.grid.shape[1] / 24))
    plt = _pyplot()
    fig = plt.figure(figsize=(side, side * found.grid.shape[0] / found.grid.shape[1] + 0.4), dpi=80)
    axis = fig.add_axes((0, 0, 1, side * found.grid.shape[0] / found.grid.shape[1] / (side * found.grid.shape[0]
                                                                                       / found.grid.shape[1] + 0.4)))
    _show(axis, found.grid, interpolation="nearest")
    shown = {1: "grayscale", 3: "RGB"}.get(channels, f"mean over {channels} input channels")
    fig.suptitle(f"{model_name} {found.layer}: {count} filters {kh}x{kw} ({shown}), each scaled to its own range",
                 fontsize=9, y=0.995, va="top")
    return _png(fig)


def features_png(image, found, model_name) -> bytes:
    """The image and the strongest feature maps of :class:`~keras_cnn.explain.methods.FeatureMaps`."""
    count = len(found.maps)
    columns = math.ceil(math.sqrt(count + 1))
    rows = math.ceil((count + 1) / columns)
    where = f"{found.level} ({found.layer})" if found.level else found.layer
    fig, axes = _figure(columns, rows, 1.6, 1.75, f"{model_name} {where}: the {count} strongest of {found.total} "
                                                   "maps (by mean activation)")
    for axis in axes.ravel():
        axis.set_axis_off()
    _show(axes[0, 0], image)
    axes[0, 0].set_title("input", fontsize=8)
    for k in range(count):
        axis = axes.ravel()[k + 1]
        axis.imshow(found.maps[k], cmap="viridis", interpolation="nearest")
        axis.set_title(f"channel {found.channels[k]}", fontsize=8)
    return _png(fig)


def deconvnet_png(image, found, model_name) -> bytes:
    """ZFNet Fig. 2: each strong activation's projection (top row) above the image patch it sees (bottom)."""
    count = len(found.channels)
    where = f"{found.level} ({found.layer})" if found.level else found.layer
    fig, axes = _figure(count, 2, 1.5, 1.6, f"{model_name} {where}: deconvnet projections of the {count} strongest "
                                              "activations, and the image patches under them")
    for k in range(count):
        top, left, bottom, right = _visible_box(found.projections[k], found.boxes[k])
        projection = found.projections[k][top:bottom, left:right]
        scale = float(np.percentile(np.abs(projection), 99.5)) or float(np.abs(projection).max()) or 1.0
        _show(axes[0, k], 0.5 + 0.5 * projection / scale, interpolation="nearest")
        axes[0, k].set_title(f"channel {found.channels[k]}", fontsize=8)
        _show(axes[1, k], np.asarray(image)[top:bottom, left:right], interpolation="nearest")
    return _png(fig)


def _visible_box(projection, box, share=0.03, margin=2):
    """The part of a projection's support (``box``) where it is visibly non-zero (above ``share`` of its largest
    magnitude summed over channels), with a margin: a deep unit's support spans most of the image, the
    pattern a small part of it."""
    magnitude = np.abs(projection).sum(axis=-1)
    rows, columns = np.nonzero(magnitude > share * magnitude.max()) if magnitude.max() > 0 else ((), ())
    if len(rows) == 0:
        return tuple(int(v) for v in box)
    top, left = max(int(box[0]), rows.min() - margin), max(int(box[1]), columns.min() - margin)
    return top, left, min(int(box[2]), rows.max() + 1 + margin), min(int(box[3]), columns.max() + 1 + margin)


def occlusion_png(image, found, class_name, model_name) -> bytes:
    """ZFNet Fig. 7: the image, the class probability by the grey square's position, the sensitivity overlay."""
    plt = _pyplot()
    fig, axes = _figure(3, 1, 2.6, 2.6, f"{model_name}: occlusion, class {class_name!r} "
                                        f"(p={found.base_probability:.3f} unoccluded; square {found.size} px)")
    _show(axes[0, 0], image)
    axes[0, 0].set_title("input", fontsize=8)
    shown = axes[0, 1].imshow(found.probability, cmap=HEATMAP, vmin=0, vmax=max(found.base_probability, 1e-6),
                              interpolation="nearest")
    axes[0, 1].set_axis_off()
    axes[0, 1].set_title("p(class), square at each position", fontsize=8)
    plt.colorbar(shown, ax=axes[0, 1], fraction=0.046, pad=0.04)
    _show(axes[0, 2], overlay(image, found.heatmap))
    axes[0, 2].set_title("probability drop", fontsize=8)
    return _png(fig)


def gradcam_png(image, found, class_name, model_name) -> bytes:
    """The image and its Grad-CAM heatmap over it."""
    where = f"{found.level} ({found.layer})" if found.level else found.layer
    fig, axes = _figure(2, 1, 2.6, 2.6, f"{model_name}: Grad-CAM of {class_name!r} (p={found.probability:.3f}) "
                                        f"on {where}")
    _show(axes[0, 0], image)
    axes[0, 0].set_title("input", fontsize=8)
    _show(axes[0, 1], overlay(image, found.heatmap))
    axes[0, 1].set_title(f"Grad-CAM, {found.cam.shape[0]}x{found.cam.shape[1]} map", fontsize=8)
    return _png(fig)
