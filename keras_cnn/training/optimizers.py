"""Keras' Adam, AdamW and SGD with each variable's update as one fused TensorFlow op.

The same optimizers as ``keras.optimizers.Adam`` / ``AdamW`` / ``SGD``, same arguments, same
variables, same update rule, same saved state, with one difference in how the TensorFlow backend
writes the update into the training graph:

- Keras writes each variable's update as ~30 separate ops (casts, powers, the two moment updates,
  the division, the assignment) and, for AdamW, evaluates the learning-rate schedule once more per
  variable for the weight decay. For a MobileNetV3-Small that is ~9,000 graph ops, each built by
  Python when ``fit`` traces its first step.
- Here the step's scalars (learning rate, ``beta ** step``, decay) are computed once per step, and
  each variable gets TensorFlow's fused kernel: ``ResourceApplyAdam`` (Kingma & Ba 2015, Algorithm 1
  with the efficient bias correction of its section 2, the formula Keras' Adam uses) or
  ``ResourceApplyKerasMomentum`` (the kernel written for Keras' SGD: ``m = momentum * m - lr * g``;
  ``w += m``, or ``w += momentum * m - lr * g`` with Nesterov).

Measured on the 2-core CPU (``benchmarks/first_step.py``, side by side in one process): the first
``fit`` step of MobileNetV3-Small at 32x32 with the recipe's AdamW traces in ~40% of the time Keras'
optimizer takes; steps after it run as fast. Weights after 20 updates equal Keras' within float32
rounding (tests/test_optimizers.py).

On the torch backend Adam and AdamW update all variables with torch's fused CPU/GPU kernel
(``torch.optim.adam.adam(..., fused=True)``: one pass over each variable instead of Keras' ten
``torch._foreach_*`` passes), with the epsilon scaled per step so that the update is Keras' (Keras adds
epsilon to ``sqrt(v)``, torch to ``sqrt(v / (1 - beta_2 ** t))``). SGD runs Keras' own torch update
(``torch._foreach_*``): a subclass of Keras' optimizer would otherwise fall back to the per-variable
loop of the base optimizer, which is slower than Keras' torch optimizers. Measured on the 2-core CPU:
tests/test_torch_backend.py's fit of 23 families (8 steps each; VGG-11's 129M parameters the largest)
took 102 s with ``keras.optimizers.Adam`` and 70 s with this one.

Everywhere the fused form does not apply, the Keras code runs unchanged: the JAX backend, a
``tf.distribute`` strategy (MirroredStrategy replicas), sparse gradients, AMSGrad. EMA, gradient
clipping and accumulation, loss scaling and constraints are the base optimizer's, untouched.

Adam: https://arxiv.org/abs/1412.6980 · AdamW (decoupled weight decay): https://arxiv.org/abs/1711.05101

Example:
    >>> import keras, keras_cnn
    >>> from keras_cnn.training.optimizers import AdamW
    >>> model = keras_cnn.build("lenet5", num_classes=10)
    >>> model.compile(AdamW(1e-3, weight_decay=1e-4), "sparse_categorical_crossentropy")
    >>> type(model.optimizer).__name__
    'AdamW'
"""

from __future__ import annotations

import keras


def _tensorflow_graph_update_applies(grads) -> bool:
    """The fused ops are TensorFlow's, for dense gradients, outside a tf.distribute strategy."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.distribute.has_strategy() and not any(isinstance(g, tf.IndexedSlices) for g in grads)


def _resource(variable):
    """The tf.Variable behind a Keras variable (a raw op takes its handle)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


class _FusedUpdate:
    """Mixin: weight decay and the update step as one op per variable on TensorFlow, and one torch
    update for all variables on torch (see the module docstring). Each optimizer gives
    ``_step_scalars(learning_rate, dtype)``, the kernel's scalar arguments computed once per step,
    ``_fused_update(grad, variable, value, scalars)``, its kernel call for one variable (``value``: the
    tf.Variable behind ``variable``), and ``_torch_update(grads, variables, learning_rate)``."""

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None or not _tensorflow_graph_update_applies([]):
            return super()._apply_weight_decay(variables)
        import tensorflow as tf

        decay = {}  # lr * weight_decay, computed once per step per dtype (Keras: once per variable)
        for variable in variables:
            if self._use_weight_decay(variable):
                value = _resource(variable)
                if value.dtype not in decay:
                    decay[value.dtype] = tf.cast(self.learning_rate, value.dtype) * tf.cast(self.weight_decay,
                                                                                            value.dtype)
                value.assign_sub(value * decay[value.dtype])

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if keras.backend.backend() == "torch" and self._fused_supported():
            import torch

            with torch.no_grad():
                return self._torch_update(grads, trainable_variables, learning_rate)
        if not self._fused_supported() or not _tensorflow_graph_update_applies(grads):
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        import tensorflow as tf

        scalars = {}
        for grad, variable in zip(grads, trainable_variables):
            value = _resource(variable)
            if value.dtype not in scalars:
                scalars[value.dtype] = self._step_scalars(learning_rate, value.dtype)
            self._fused_update(tf.cast(grad, value.dtype), variable, value, scalars[value.dtype])

    def _fused_supported(self) -> bool:
        return True


def _cast(value, dtype):
    import tensorflow as tf

    return tf.cast(value, dtype)


@keras.saving.register_keras_serializable(package="keras_cnn")
class Adam(_FusedUpdate, keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with one ``ResourceApplyAdam`` op per variable on TensorFlow, torch's fused
    Adam kernel on torch."""

    def _fused_supported(self):
        return not self.amsgrad

    def _step_scalars(self, learning_rate, dtype):
        step = _cast(self.iterations + 1, dtype)
        beta_1, beta_2 = _cast(self.beta_1, dtype), _cast(self.beta_2, dtype)
        return {"lr": _cast(learning_rate, dtype), "beta1": beta_1, "beta2": beta_2,
                "beta1_power": beta_1 ** step, "beta2_power": beta_2 ** step, "epsilon": _cast(self.epsilon, dtype)}

    def _torch_update(self, grads, variables, learning_rate):
        import torch
        from torch.optim.adam import adam

        step = float(keras.ops.convert_to_numpy(self.iterations)) + 1.0
        params = [v.value for v in variables]
        indices = [self._get_variable_index(v) for v in variables]
        # torch's kernel counts the step itself (it adds 1 to each of these before the update)
        steps = [torch.tensor(step - 1.0, dtype=torch.float32, device=p.device) for p in params]
        beta_1, beta_2 = float(self.beta_1), float(self.beta_2)
        adam(params, [g.to(p.dtype) for g, p in zip(grads, params)], [self._momentums[i].value for i in indices],
             [self._velocities[i].value for i in indices], [], steps, fused=True, amsgrad=False, beta1=beta_1,
             beta2=beta_2, lr=float(learning_rate), weight_decay=0.0,
             eps=float(self.epsilon) / (1.0 - beta_2 ** step) ** 0.5, maximize=False)

    def _fused_update(self, grad, variable, value, scalars):
        import tensorflow as tf

        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(var=value.handle, m=_resource(self._momentums[index]).handle,
                                     v=_resource(self._velocities[index]).handle, grad=grad, use_locking=False,
                                     **scalars)


@keras.saving.register_keras_serializable(package="keras_cnn")
class AdamW(Adam, keras.optimizers.AdamW):
    """``keras.optimizers.AdamW``: :class:`Adam`'s fused update, the decoupled weight decay
    ``w -= lr * weight_decay * w`` written once per variable with ``lr * weight_decay`` computed once."""


@keras.saving.register_keras_serializable(package="keras_cnn")
class SGD(_FusedUpdate, keras.optimizers.SGD):
    """``keras.optimizers.SGD`` with one ``ResourceApplyKerasMomentum`` (or ``ResourceApplyGradientDescent``
    without momentum) op per variable on TensorFlow, Keras' ``torch._foreach_*`` update on torch."""

    def _step_scalars(self, learning_rate, dtype):
        return {"lr": _cast(learning_rate, dtype), "momentum": _cast(self.momentum, dtype)}

    def _torch_update(self, grads, variables, learning_rate):
        import torch

        params, rate = [v.value for v in variables], float(learning_rate)
        if self.momentum == 0:
            torch._foreach_add_(params, grads, alpha=-rate)
            return
        momentums = [self.momentums[self._get_variable_index(v)].value for v in variables]
        torch._foreach_mul_(momentums, self.momentum)  # m = momentum * m - lr * g
        torch._foreach_add_(momentums, grads, alpha=-rate)
        if self.nesterov:  # w += momentum * m - lr * g
            torch._foreach_add_(params, grads, alpha=-rate)
            torch._foreach_add_(params, momentums, alpha=self.momentum)
        else:  # w += m
            torch._foreach_add_(params, momentums)

    def _fused_update(self, grad, variable, value, scalars):
        import tensorflow as tf

        if self.momentum == 0:
            tf.raw_ops.ResourceApplyGradientDescent(var=value.handle, alpha=scalars["lr"], delta=grad,
                                                    use_locking=False)
            return
        accumulator = _resource(self.momentums[self._get_variable_index(variable)])
        tf.raw_ops.ResourceApplyKerasMomentum(var=value.handle, accum=accumulator.handle, grad=grad,
                                              use_locking=False, use_nesterov=self.nesterov, **scalars)
