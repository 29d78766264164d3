"""Custom layers of keras_cnn, one concept a file. Each is registered serializable
(``package="keras_cnn"``) so ``.keras`` files that use them load after ``import keras_cnn``."""

from keras_cnn.layers.activations import hard_sigmoid, hard_swish, lecun_tanh
from keras_cnn.layers.adaptive_pool import AdaptiveAveragePooling2D
from keras_cnn.layers.channel_shuffle import ChannelShuffle, ChannelSplit
from keras_cnn.layers.drop_path import DropPath
from keras_cnn.layers.input_normalization import InputNormalization
from keras_cnn.layers.lenet import LENET5_C3_TABLE, EuclideanRBF, PartialConv2D, TrainableSubsampling
from keras_cnn.layers.lrn import LocalResponseNormalization
from keras_cnn.layers.repvgg import RepVGGBlock
from keras_cnn.layers.squeeze_excite import SqueezeExcite
from keras_cnn.layers.zero_pad_shortcut import ZeroPadShortcut

__all__ = [
    "AdaptiveAveragePooling2D", "ChannelShuffle", "ChannelSplit", "DropPath", "EuclideanRBF", "InputNormalization",
    "LENET5_C3_TABLE",
    "LocalResponseNormalization", "PartialConv2D", "RepVGGBlock", "SqueezeExcite", "TrainableSubsampling",
    "ZeroPadShortcut", "hard_sigmoid", "hard_swish", "lecun_tanh",
]
