"""Training: the fit recipe and run folders (:mod:`.run`), learning-rate schedules, the optimizers
(Keras' own, each variable's update one fused op on TensorFlow: :mod:`.optimizers`), callbacks,
distribution strategies and precision, logits during fit, run reports (plots, top-k), evaluating
and predicting with a trained run (:mod:`.evaluate`), and hyperparameter search (:mod:`.tune`)."""
