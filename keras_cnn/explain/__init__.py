"""See what a network learned: the views of Zeiler & Fergus' ZFNet paper and Grad-CAM, for every registered net.

- :func:`filters`: a layer's filters as one grid (default the first convolution; ZFNet Fig. 6).
- :func:`feature_maps`: the strongest feature maps of a layer for an image.
- :func:`deconvnet`: the strongest activations of a layer projected back to pixel space through the
  deconvnet (unpooling by the recorded switches, rectification, transposed filters; ZFNet Fig. 2).
- :func:`occlusion`: the class probability as a grey square slides over the image (ZFNet Fig. 7).
- :func:`gradcam`: Grad-CAM over the last map of a chosen stride (Selvaraju et al. 2017).
- :func:`explain`: all of it from a run folder, a ``.keras`` file or a registry name (``weights=``), on image
  files read as ``keras-cnn predict`` reads them, written as PNGs plus ``index.json`` (``keras-cnn explain``).

Layers are feature levels (``"P3"``, the last map at stride 8: ``keras_cnn.model_info(name)["features"]``) or
layer names. The functions return NumPy arrays (dataclasses of them) for notebooks; :func:`overlay` puts a
heatmap on its image.

Backends: deconvnet and Grad-CAM take gradients, on TensorFlow and PyTorch (a ``ValueError`` on JAX); filters,
feature maps and occlusion need forward passes only and run on every backend.

Papers: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014,
https://arxiv.org/abs/1311.2901; Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017, https://arxiv.org/abs/1610.02391.

Example:
    >>> import numpy as np, keras_cnn
    >>> from keras_cnn import explain
    >>> model = keras_cnn.build("resnet20", num_classes=10)
    >>> image = np.random.default_rng(0).random((32, 32, 3), dtype="float32")
    >>> cam = explain.gradcam(model, image, layer="P2")
    >>> cam.level, cam.cam.shape, cam.heatmap.shape
    ('P2', (8, 8), (32, 32))
    >>> explain.overlay(image, cam.heatmap).shape
    (32, 32, 3)
"""

from keras_cnn.explain.methods import (
    Deconvnet,
    FeatureMaps,
    Filters,
    GradCAM,
    Occlusion,
    deconvnet,
    feature_maps,
    filter_grid,
    filters,
    gradcam,
    occlusion,
    predict_probabilities,
)
from keras_cnn.explain.pictures import overlay
from keras_cnn.explain.run import METHODS, explain

__all__ = ["METHODS", "Deconvnet", "FeatureMaps", "Filters", "GradCAM", "Occlusion", "deconvnet", "explain",
           "feature_maps", "filter_grid", "filters", "gradcam", "occlusion", "overlay", "predict_probabilities"]
