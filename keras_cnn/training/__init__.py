"""Training: the fit recipe and run folders (:mod:`.run`), fine-tuning a checkpoint (:mod:`.fine_tune`),
learning-rate schedules, the optimizers
(Keras' own, each variable's update one fused op on TensorFlow: :mod:`.optimizers`), callbacks,
distribution strategies and precision, logits during fit, run reports (plots, top-k), evaluating
and predicting with a trained run (:mod:`.evaluate`), and hyperparameter search (:mod:`.tune`)."""
