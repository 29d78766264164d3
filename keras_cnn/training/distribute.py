"""Devices and precision for training: ``none``, ``mirrored`` (TensorFlow) and ``data_parallel``
(Keras' JAX distribution API); ``mixed_float16`` / ``mixed_bfloat16`` policies.

Multi-host training runs on the JAX backend: start the same script on every host with
``keras.distribution.initialize(job_addresses, num_processes, process_id)`` first, then
``strategy="data_parallel"`` spreads every batch over all hosts' devices. With the TensorFlow
backend only single-host ``MirroredStrategy`` is offered: ``MultiWorkerMirroredStrategy`` with
Keras 3's ``model.fit`` is not supported (keras-team/keras issue 20585).

Example:
    >>> from keras_cnn.training import distribute
    >>> with distribute.strategy_scope("none"):
    ...     pass
"""

from __future__ import annotations

import contextlib

import keras

STRATEGIES = ("none", "mirrored", "data_parallel")
PRECISIONS = (None, "auto", "float16", "bfloat16")


def has_gpu() -> bool:
    """Whether the active backend sees a GPU."""
    try:
        return any(d.lower().startswith(("gpu", "cuda")) for d in keras.distribution.list_devices())
    except Exception:  # list_devices is not available on every backend
        return False


def precision_policy(mixed_precision) -> str:
    """Keras dtype policy for ``mixed_precision`` (``auto``: float16 on GPU, bfloat16 on CPU)."""
    if mixed_precision not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {list(PRECISIONS)}, received {mixed_precision!r}")
    if not mixed_precision:
        return "float32"
    if mixed_precision == "auto":
        mixed_precision = "float16" if has_gpu() else "bfloat16"
    return f"mixed_{mixed_precision}"


@contextlib.contextmanager
def precision(policy: str):
    """Use ``policy`` as Keras' global dtype policy inside the block, restore it after."""
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def replicas(strategy: str) -> int:
    """How many devices a batch is split over under ``strategy``."""
    if strategy == "mirrored":
        return len(_mirrored_devices())
    if strategy == "data_parallel":
        return len(keras.distribution.list_devices())
    return 1


def _mirrored_devices():
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


@contextlib.contextmanager
def strategy_scope(strategy: str):
    """Build and compile the model inside this block.

    ``mirrored``: ``tf.distribute.MirroredStrategy`` over every GPU, or every logical CPU when
    there is no GPU (:func:`split_cpu` makes two for tests). ``data_parallel``: Keras'
    ``DataParallel`` over every JAX device (``JAX_NUM_CPU_DEVICES=2`` makes two CPUs).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, received {strategy!r}")
    backend = keras.backend.backend()
    if strategy == "none":
        yield
    elif strategy == "mirrored":
        if backend != "tensorflow":
            raise ValueError(f"strategy 'mirrored' needs the tensorflow backend; KERAS_BACKEND is {backend!r} "
                             "(use 'data_parallel' on jax)")
        import tensorflow as tf

        with tf.distribute.MirroredStrategy(_mirrored_devices()).scope():
            yield
    else:
        if backend != "jax":
            raise ValueError(f"strategy 'data_parallel' needs the jax backend (KERAS_BACKEND=jax); "
                             f"KERAS_BACKEND is {backend!r} (use 'mirrored' on tensorflow)")
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        try:
            yield
        finally:
            keras.distribution.set_distribution(previous)


def split_cpu(count: int = 2):
    """Make TensorFlow show ``count`` logical CPU devices (call before TensorFlow runs anything)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
