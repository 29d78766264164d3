"""``python -m keras_cnn.cli``: the ``keras-cnn`` command."""

from keras_cnn.cli import run

run()
