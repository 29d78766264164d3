"""Model families, one file each; importing this package registers every variant."""

from keras_cnn.models import (  # noqa: F401
    alexnet,
    cspnet,
    darknet,
    densenet,
    inception,
    inception_v4,
    lenet,
    mobilenet,
    nin,
    repvgg,
    resnet,
    shufflenet,
    squeezenet,
    vgg,
    vovnet,
    xception,
)
