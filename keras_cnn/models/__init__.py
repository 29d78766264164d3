"""Model families, one file each; importing this package registers every variant."""

from keras_cnn.models import (  # noqa: F401
    alexnet, cspnet, darknet, densenet, lenet, mobilenet, nin, repvgg, resnet, shufflenet, squeezenet, vgg, vovnet,
)
