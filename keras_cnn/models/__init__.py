"""Model families, one file each; importing this package registers every variant."""

from keras_cnn.models import (  # noqa: F401
    alexnet, cspnet, darknet, densenet, inception, lenet, mobilenet, nin, repvgg, resnet, shufflenet, squeezenet,
    inception_v4, vgg, vovnet, xception,
)
