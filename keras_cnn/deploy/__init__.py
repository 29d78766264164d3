"""Deployment: SavedModel and TFLite export (:mod:`.export`), re-parameterization for inference
(:mod:`.reparameterize`: RepVGG fusion, Conv+BN folding), and the TFLite runtime (:mod:`.tflite`:
run, inspect and time ``.tflite`` files)."""
