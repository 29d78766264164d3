"""The normalization a pretrained checkpoint expects, inside the model (like keras.applications'
``include_preprocessing``): the model takes [0, 1] images and gives the checkpoint's answer.

The layer also carries the checkpoint's evaluation transform (resize, center crop, interpolation)
in its config, so ``keras-cnn predict`` and the export reports find it in a saved model.

Example:
    >>> import numpy as np
    >>> from keras_cnn.layers import InputNormalization
    >>> layer = InputNormalization(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    >>> layer(np.ones((1, 2, 2, 3), "float32"))[0, 0, 0].tolist()
    [2.0, 2.0, 2.0]
"""

import keras
import numpy as np
from keras import layers


@keras.saving.register_keras_serializable(package="keras_cnn")
class InputNormalization(layers.Layer):
    """``(x - mean) / std`` per channel on [0, 1] input; no trainable weights.

    Args:
        mean, std: per-channel values (the checkpoint's, on [0, 1] images).
        resize_size, crop_size, interpolation: the checkpoint's evaluation transform (resize the
            shorter side to ``resize_size``, center-crop ``crop_size``), recorded for inference.
        checkpoint: the checkpoint's name (``torchvision:IMAGENET1K_V1``), recorded.
        dataset: the data set its classifier was trained on (``"imagenet"``, ``"cifar10"``; ``""``
            unknown), recorded: ``keras-cnn predict`` names its classes.
    """

    def __init__(self, mean, std, resize_size=None, crop_size=None, interpolation="bilinear", checkpoint="",
                 dataset="", **kwargs):
        super().__init__(**kwargs)
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"InputNormalization: mean and std need one value per channel and std > 0, received "
                             f"mean={mean!r}, std={std!r}")
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.resize_size, self.crop_size = resize_size, crop_size
        self.interpolation, self.checkpoint, self.dataset = interpolation, checkpoint, dataset

    def build(self, input_shape):
        if input_shape[-1] != len(self.mean):
            raise ValueError(f"{self.name}: {len(self.mean)} channel values for an input of {input_shape[-1]} "
                             "channels")

    def call(self, inputs):
        mean = np.asarray(self.mean, "float32")
        inverse_std = (1.0 / np.asarray(self.std, "float64")).astype("float32")
        return (inputs - keras.ops.cast(mean, inputs.dtype)) * keras.ops.cast(inverse_std, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "resize_size": self.resize_size,
                "crop_size": self.crop_size, "interpolation": self.interpolation, "checkpoint": self.checkpoint,
                "dataset": self.dataset}
