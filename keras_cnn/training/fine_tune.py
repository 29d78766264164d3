"""Fine-tuning a trained checkpoint without throwing away what it knows.

Trained from a checkpoint the way a net is trained from scratch (the whole net at the family's rate,
BatchNorm re-estimating its statistics on a small new data set), a real ImageNet MobileNetV2 fell
from 52 % to 31 % val top-1 on ten classes of real photos the epoch its backbone was unfrozen
(issue #39). The standard recipe (the Keras transfer-learning guide's; Kornblith et al. 2019, "Do
Better ImageNet Models Transfer Better?") keeps it:

1. the new classifier trains alone first, at the family's rate (``freeze_epochs``);
2. then the whole net trains at a lower rate (``backbone_lr_factor`` times it, after a short warm-up);
3. the loaded backbone's BatchNorm layers stay in inference mode throughout: their moving statistics
   are the checkpoint's, and their scale and offset stay fixed (``train_batch_norm=True`` trains them).

:func:`keras_cnn.train` does this whenever ``weights=`` loads a checkpoint (``config.json`` records the
values; every one can be overridden). In your own Keras code, a backbone built with a checkpoint
(``include_top=False``, ``features=``) is fine-tuned by the same two lines this module's
:func:`fine_tune` runs::

    for layer in backbone.layers:             # 1. BatchNorm in inference mode, statistics kept
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    # 2. compile with a rate about 10x below the from-scratch one, after training the new head alone

Example:
    >>> import keras_cnn
    >>> from keras_cnn.training.fine_tune import fine_tune
    >>> backbone = keras_cnn.build("resnet18", include_top=False, input_shape=(64, 64, 3))
    >>> len(fine_tune(backbone)) > 0    # its BatchNorm layers, now in inference mode
    True
"""

from __future__ import annotations

import keras

#: The recipe's defaults for a run that loads a checkpoint (benchmarks/RESULTS.md, "Fine-tuning").
FREEZE_EPOCHS = 1
BACKBONE_LR_FACTOR = 0.1


def batch_norm_layers(layers) -> list:
    """The BatchNormalization layers among ``layers`` (and inside nested models)."""
    found = []
    for layer in layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(batch_norm_layers(layer.layers))
    return found


def fine_tune(model, layers=None, *, train_batch_norm=False) -> list:
    """Make ``model`` (or its ``layers``: the backbone) trainable for fine-tuning with its BatchNorm layers in
    inference mode (``trainable = False``: the checkpoint's statistics are used and kept, their scale and
    offset fixed); returns those BatchNorm layers. ``train_batch_norm=True`` leaves them trainable (they then
    re-estimate their statistics on the new data). Compile afterwards, at a lower rate than from scratch."""
    layers = list(model.layers if layers is None else layers)
    for layer in layers:
        layer.trainable = True
    frozen = [] if train_batch_norm else batch_norm_layers(layers)
    for layer in frozen:
        layer.trainable = False
    return frozen
