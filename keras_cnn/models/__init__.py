"""Model families, one file each; importing this package registers every variant."""

from keras_cnn.models import lenet  # noqa: F401
