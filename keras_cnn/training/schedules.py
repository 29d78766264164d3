"""Learning-rate schedules and the optimizers of the training recipe.

The schedules are registered Keras serializables, so a ``.keras`` checkpoint written by
:func:`keras_cnn.train` loads after a plain ``import keras_cnn``.

Example:
    >>> from keras_cnn.training.schedules import make_optimizer
    >>> opt = make_optimizer("sgd", learning_rate=0.1, steps=1000, warmup_steps=50, schedule="cosine")
    >>> round(float(opt.learning_rate), 4)  # the rate at step 0: 0.1 / 50 into the warm-up
    0.002
"""

from __future__ import annotations

import math

import keras

from keras_cnn.training import optimizers

OPTIMIZERS = ("adamw", "sgd", "adam")
SCHEDULES = ("cosine", "step", "constant")
STEP_DROPS = (0.5, 0.75)  # the rate falls 10x at half and three quarters of the run (He et al. 2016)


@keras.saving.register_keras_serializable(package="keras_cnn")
class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``learning_rate``, then 10x drops at the given step boundaries."""

    def __init__(self, learning_rate, boundaries, warmup_steps=0, factor=0.1):
        self.learning_rate, self.boundaries = float(learning_rate), [int(b) for b in boundaries]
        self.warmup_steps, self.factor = int(warmup_steps), float(factor)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        drops = sum(keras.ops.cast(step >= b, "float32") for b in self.boundaries) if self.boundaries else 0.0
        rate = self.learning_rate * keras.ops.power(self.factor, drops)
        if self.warmup_steps:
            rate = rate * keras.ops.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return rate

    def get_config(self):
        return {"learning_rate": self.learning_rate, "boundaries": self.boundaries,
                "warmup_steps": self.warmup_steps, "factor": self.factor}


@keras.saving.register_keras_serializable(package="keras_cnn")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``learning_rate`` over ``warmup_steps``, then cosine decay to 0 over the
    remaining ``decay_steps`` (Loshchilov & Hutter 2017; Goyal et al. 2017 for the warm-up).

    Written as one branch-free expression: Keras' optimizers evaluate the schedule once per
    variable for weight decay, and ``keras.optimizers.schedules.CosineDecay``'s warm-up ``cond``
    made tracing a MobileNet-v3 train step about 50% slower.
    """

    def __init__(self, learning_rate, decay_steps, warmup_steps=0):
        self.learning_rate, self.decay_steps = float(learning_rate), max(1, int(decay_steps))
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        progress = keras.ops.clip((step - self.warmup_steps) / self.decay_steps, 0.0, 1.0)
        rate = self.learning_rate * 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        if self.warmup_steps:
            rate = rate * keras.ops.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return rate

    def get_config(self):
        return {"learning_rate": self.learning_rate, "decay_steps": self.decay_steps,
                "warmup_steps": self.warmup_steps}


@keras.saving.register_keras_serializable(package="keras_cnn")
class FineTuneSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Fine-tuning a checkpoint in two phases: ``head_rate`` (the family's rate, constant) while only the
    new classifier trains, for ``switch_steps`` steps; then ``backbone`` (a schedule or rate, restarted at
    step 0), the lower rate the whole net trains at once the backbone is unfrozen. Branch-free, like
    :class:`WarmupCosineDecay`."""

    def __init__(self, head_rate, backbone, switch_steps):
        self.head_rate, self.switch_steps = float(head_rate), int(switch_steps)
        self.backbone = keras.optimizers.schedules.deserialize(backbone) if isinstance(backbone, dict) else backbone

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        later = keras.ops.cast(step >= self.switch_steps, "float32")
        shifted = keras.ops.maximum(step - self.switch_steps, 0.0)
        backbone = self.backbone(shifted) if callable(self.backbone) else self.backbone
        return (1.0 - later) * self.head_rate + later * backbone

    def get_config(self):
        backbone = self.backbone
        if isinstance(backbone, keras.optimizers.schedules.LearningRateSchedule):
            backbone = keras.optimizers.schedules.serialize(backbone)
        return {"head_rate": self.head_rate, "backbone": backbone, "switch_steps": self.switch_steps}


def fine_tune_schedule(learning_rate, *, factor, head_steps, steps, schedule="cosine", warmup_share=0.1):
    """The rate of a fine-tuning run of ``steps`` steps whose first ``head_steps`` train the classifier only:
    ``learning_rate`` for them, then ``learning_rate * factor`` with a linear warm-up over ``warmup_share``
    of the remaining steps and the run's ``schedule`` (cosine: to 0) over the rest."""
    rest = max(1, steps - head_steps)
    backbone = learning_rate_schedule(learning_rate * factor, schedule=schedule, steps=rest,
                                      warmup_steps=max(1, round(rest * warmup_share)))
    return FineTuneSchedule(learning_rate, backbone, head_steps) if head_steps else backbone


def learning_rate_schedule(learning_rate, *, schedule="cosine", steps=None, warmup_steps=0):
    """The learning rate (a schedule over ``steps`` optimizer steps when ``steps`` is known)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, received {schedule!r}")
    if not steps or schedule == "constant":
        return learning_rate
    warmup_steps = min(warmup_steps, steps - 1)
    if schedule == "step":
        return WarmupStepDecay(learning_rate, [int(steps * f) for f in STEP_DROPS], warmup_steps)
    return WarmupCosineDecay(learning_rate, steps - warmup_steps, warmup_steps)


def make_optimizer(name="adamw", *, learning_rate=1e-3, steps=None, warmup_steps=0, weight_decay=1e-4,
                   momentum=0.9, schedule="cosine", ema=0.0, fine_tune=None):
    """AdamW / SGD (Nesterov momentum) / Adam with the schedule of :func:`learning_rate_schedule`.

    The optimizers are :mod:`keras_cnn.training.optimizers`' (Keras' own with each variable's update
    as one fused op on TensorFlow: the first ``fit`` step traces in less than half the time).

    ``ema``: momentum of an exponential moving average of the weights (Polyak averaging, e.g. 0.999;
    0 turns it off). Keras keeps the average in the optimizer and writes it into the model when
    ``fit`` ends; :func:`keras_cnn.train` also evaluates and checkpoints the averaged weights.

    ``fine_tune``: ``(head_steps, factor)`` for a checkpoint's fine-tuning (:func:`fine_tune_schedule`:
    the family's rate while the classifier alone trains, then ``factor`` times it with a short warm-up).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, received {name!r}")
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"ema must be a momentum in [0, 1) (0 turns the weight average off), received {ema!r}")
    if fine_tune is not None and steps:
        head_steps, factor = fine_tune
        lr = fine_tune_schedule(learning_rate, factor=factor, head_steps=head_steps, steps=steps, schedule=schedule)
    else:
        lr = learning_rate_schedule(learning_rate, schedule=schedule, steps=steps, warmup_steps=warmup_steps)
    averaging = {"use_ema": True, "ema_momentum": ema} if ema else {}
    if name == "sgd":
        return optimizers.SGD(lr, momentum=momentum, nesterov=True, weight_decay=weight_decay or None, **averaging)
    if name == "adam":
        return optimizers.Adam(lr, **averaging)
    return optimizers.AdamW(lr, weight_decay=weight_decay, **averaging)
