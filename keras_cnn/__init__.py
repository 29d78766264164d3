"""keras_cnn: the classic CNN line, faithful, in Keras 3.

    >>> import keras_cnn
    >>> keras_cnn.list_models("lenet*")
    ['lenet', 'lenet5']
    >>> model = keras_cnn.build("lenet5", num_classes=10)
"""

__version__ = "0.1.0"

from keras_cnn import layers  # noqa: F401  (registers the custom layers for .keras loading)
from keras_cnn.fusion import reparameterize
from keras_cnn.registry import Variant, build, get_spec, list_models, model_info, register_model

__all__ = ["build", "get_spec", "list_models", "model_info", "register_model", "reparameterize", "Variant",
           "__version__"]
