"""keras_cnn: the classic CNN line, faithful, in Keras 3.

    >>> import keras_cnn
    >>> keras_cnn.list_models("lenet*")
    ['lenet', 'lenet5']
    >>> model = keras_cnn.build("lenet5", num_classes=10)
"""

__version__ = "0.1.0"

import sys

# Importing the package registers everything a saved model may name: the custom layers
# (wherever they are defined), the learning-rate schedules of checkpoints and every model family.
from keras_cnn import layers, models  # noqa: F401
from keras_cnn.analysis.model_table import model_info
from keras_cnn.deploy.reparameterize import reparameterize
from keras_cnn.registry import RECURSION_LIMIT, Variant, build, get_spec, list_models, register_model
from keras_cnn.training import schedules  # noqa: F401
from keras_cnn.training.run import train

# Keras walks a functional graph recursively (building, cloning, loading a saved model): the paper's ResNet-1202
# (4,210 layers) needs more than Python's default limit of 1,000 frames. Loading any keras_cnn model imports
# keras_cnn (for its layers), so the limit is raised here (registry.RECURSION_LIMIT), never lowered.
sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))

__all__ = ["build", "get_spec", "list_models", "model_info", "register_model", "reparameterize", "train", "Variant",
           "__version__"]
