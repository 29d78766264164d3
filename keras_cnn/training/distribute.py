"""Devices and precision for training: ``none``, ``mirrored`` (TensorFlow) and ``data_parallel``
(Keras' JAX distribution API); ``mixed_float16`` / ``mixed_bfloat16`` policies.

Multi-process (multi-host) training runs on the JAX backend: the same ``keras-cnn train ...
--strategy data_parallel`` on every host, each with its process id and the coordinator's address
(:class:`Cluster`: flags, ``KERAS_CNN_*`` variables or SLURM's). :func:`initialize_cluster` then
starts JAX's distributed runtime with timeouts (gloo collectives on CPU), every process seeds
alike, each reads its own shard of every global batch from ``tf.data``, and only process 0 writes
the run folder (which must be on a file system every process sees, to resume). With the
TensorFlow backend only single-host ``MirroredStrategy`` is offered: ``MultiWorkerMirroredStrategy``
with Keras 3's ``model.fit`` is not supported (keras-team/keras issue 20585).

Example:
    >>> from keras_cnn.training import distribute
    >>> with distribute.strategy_scope("none"):
    ...     pass
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

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


# --------------------------------------------------------------------------- several processes
#: the environment variables a cluster is read from when no flag gives it
CLUSTER_VARIABLES = ("KERAS_CNN_COORDINATOR", "KERAS_CNN_NUM_PROCESSES", "KERAS_CNN_PROCESS_ID")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The processes of one data-parallel run: ``coordinator`` (``host:port`` of process 0, which
    serves JAX's coordination service there), ``num_processes`` and this one's ``process_id``.
    ``timeout`` (seconds) bounds the wait for the others at start-up, a silent peer (heartbeats)
    and a step that does not finish (:class:`~keras_cnn.training.callbacks.ProgressWatchdog`): a
    process that dies makes the others exit with an error instead of waiting forever."""

    coordinator: str
    num_processes: int
    process_id: int
    timeout: int = 300

    @property
    def is_chief(self) -> bool:
        """Process 0: the one that writes the run folder."""
        return self.process_id == 0


def cluster_from(coordinator=None, num_processes=None, process_id=None, timeout=300) -> Cluster | None:
    """The cluster given by the arguments, else by ``KERAS_CNN_COORDINATOR`` / ``KERAS_CNN_NUM_PROCESSES`` /
    ``KERAS_CNN_PROCESS_ID``, else under SLURM by ``SLURM_NTASKS`` / ``SLURM_PROCID`` (the coordinator still
    from the argument or ``KERAS_CNN_COORDINATOR``); None when nothing names one (a single process)."""
    env = os.environ
    coordinator = coordinator or env.get("KERAS_CNN_COORDINATOR")
    if num_processes is None:
        num_processes = env.get("KERAS_CNN_NUM_PROCESSES", env.get("SLURM_NTASKS") if coordinator else None)
    if process_id is None:
        process_id = env.get("KERAS_CNN_PROCESS_ID", env.get("SLURM_PROCID") if coordinator else None)
    given = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    if all(v is None for v in given.values()):
        return None
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ValueError(f"a multi-process run needs coordinator, num_processes and process_id; missing {missing} "
                         f"(flags --coordinator/--num-processes/--process-id or {', '.join(CLUSTER_VARIABLES)})")
    host, _, port = str(coordinator).rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"coordinator must be host:port (process 0's address), received {coordinator!r}")
    try:
        count, index, seconds = int(num_processes), int(process_id), int(timeout)
    except (TypeError, ValueError):
        raise ValueError(f"num_processes, process_id and timeout must be integers, received {num_processes!r}, "
                         f"{process_id!r}, {timeout!r}") from None
    if count < 1 or not 0 <= index < count or seconds < 1:
        raise ValueError(f"need num_processes >= 1, 0 <= process_id < num_processes and timeout >= 1 s; received "
                         f"num_processes={count}, process_id={index}, timeout={seconds}")
    return Cluster(str(coordinator), count, index, seconds)


_STARTED: list = []  # the cluster JAX's distributed runtime was started with (at most one per process)


def initialize_cluster(cluster: Cluster):
    """Start JAX's distributed runtime for ``cluster`` (once per process; before anything runs on JAX),
    with gloo collectives on CPU, start-up and heartbeat timeouts of ``cluster.timeout``."""
    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(f"a multi-process run needs the jax backend (KERAS_BACKEND=jax); KERAS_BACKEND is {backend!r}")
    if _STARTED:
        if _STARTED[0] != cluster:
            raise ValueError(f"this process already joined {_STARTED[0]}; it cannot join {cluster}")
        return
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives across processes
    jax.distributed.initialize(coordinator_address=cluster.coordinator, num_processes=cluster.num_processes,
                               process_id=cluster.process_id, initialization_timeout=cluster.timeout,
                               heartbeat_timeout_seconds=min(cluster.timeout, 100))
    _STARTED.append(cluster)


@contextlib.contextmanager
def no_distribution():
    """Run the block without Keras' distribution: variables it creates stay on this process.

    Under a multi-process distribution every new variable is a collective (each process must pass
    the same value), so what only process 0 does (saving a file creates the optimizer's throwaway
    variables) must run outside it, or the processes fall out of step."""
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


class ProcessLocal(keras.callbacks.Callback):
    """``callback`` with its hooks run under :func:`no_distribution` (the file-writing callbacks of process 0),
    except ``on_train_begin``: a restore (``BackupAndRestore``) assigns the weights there, which every
    process does alike, inside the distribution."""

    def __init__(self, callback):
        super().__init__()
        self.callback = callback

    def set_model(self, model):
        super().set_model(model)
        self.callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self.callback.set_params(params)

    def on_train_begin(self, logs=None):
        self.callback.on_train_begin(logs)


def _process_local_hook(name):
    def hook(self, *args, **kwargs):
        with no_distribution():
            return getattr(self.callback, name)(*args, **kwargs)
    hook.__name__ = name
    return hook


for _hook in ("on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
              "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end", "on_predict_begin",
              "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end"):
    setattr(ProcessLocal, _hook, _process_local_hook(_hook))


def local_copy(model):
    """A copy of ``model`` on this process alone, with the trained weights (data-parallel weights are
    replicated: every process holds them whole). Outputs of the distributed model are sharded over
    the processes, so each process evaluates this copy instead."""
    import numpy as np

    values = [np.asarray(v.value.addressable_data(0)) if hasattr(v.value, "addressable_data") else np.asarray(v)
              for v in model.weights]
    with no_distribution():
        copy = keras.models.clone_model(model)
        copy.set_weights(values)
    return copy
