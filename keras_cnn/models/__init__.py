"""Model families, one file each; importing this package registers every variant."""

from keras_cnn.models import (  # noqa: F401
    cspnet, darknet, densenet, lenet, mobilenet, repvgg, resnet, shufflenet, squeezenet, vovnet,
)
