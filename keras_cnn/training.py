"""The fit recipe: optimizer and schedule, compile, fit, evaluate.

Example:
    >>> import keras_cnn
    >>> from keras_cnn import data, training
    >>> model = keras_cnn.build("lenet", num_classes=10, input_shape=(28, 28, 1))
    >>> train = data.load("digits", "train", image_size=28, channels=1)
    >>> history = training.compile_and_fit(model, train, epochs=1, verbose=0)
"""

from __future__ import annotations

import keras

OPTIMIZERS = ("adamw", "sgd", "adam")


def make_optimizer(name="adamw", *, learning_rate=1e-3, steps=None, warmup_steps=0, weight_decay=1e-4,
                   momentum=0.9):
    """Optimizer with a cosine schedule over ``steps`` (linear warm-up first) when steps are known."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, received {name!r}")
    lr = learning_rate
    if steps:
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup_steps else learning_rate, max(1, steps - warmup_steps),
            warmup_target=learning_rate if warmup_steps else None, warmup_steps=warmup_steps)
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=momentum, nesterov=True, weight_decay=weight_decay or None)
    if name == "adam":
        return keras.optimizers.Adam(lr)
    return keras.optimizers.AdamW(lr, weight_decay=weight_decay)


def compile_and_fit(model, train, *, validation=None, epochs=10, optimizer="adamw", learning_rate=1e-3,
                    warmup_epochs=1, weight_decay=1e-4, label_smoothing=0.0, callbacks=None, verbose="auto"):
    """Compile ``model`` for sparse labels (top-1 accuracy) and fit it on a ``tf.data`` pipeline."""
    steps_per_epoch = int(train.cardinality()) if hasattr(train, "cardinality") else None
    steps = steps_per_epoch * epochs if steps_per_epoch and steps_per_epoch > 0 else None
    opt = make_optimizer(optimizer, learning_rate=learning_rate, steps=steps,
                         warmup_steps=(steps_per_epoch or 0) * warmup_epochs if steps else 0,
                         weight_decay=weight_decay)
    if label_smoothing:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
        num_classes = model.output_shape[-1]
        train = train.map(lambda x, y: (x, keras.ops.one_hot(y, num_classes)))
        if validation is not None:
            validation = validation.map(lambda x, y: (x, keras.ops.one_hot(y, num_classes)))
        metrics = ["categorical_accuracy"]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = ["accuracy"]
    model.compile(optimizer=opt, loss=loss, metrics=metrics)
    return model.fit(train, validation_data=validation, epochs=epochs, callbacks=callbacks or [], verbose=verbose)
