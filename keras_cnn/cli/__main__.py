"""``python -m keras_cnn.cli``: the ``keras-cnn`` command."""

import sys

from keras_cnn.cli import main

sys.exit(main())
