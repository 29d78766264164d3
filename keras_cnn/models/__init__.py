"""Model families, one file each; importing this package registers every variant."""

from keras_cnn.models import lenet, mobilenet, repvgg, resnet, shufflenet, squeezenet  # noqa: F401
