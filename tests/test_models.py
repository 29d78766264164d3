"""The shared harness: every registered variant builds, runs, and matches its reference.

New families add specs to the registry; this file picks them up with no change.
"""

import gc
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import UNTRAINED_OVERFLOW, forward_without_drawing, trainable_count

import keras_cnn
from keras_cnn.analysis.model_table import (
    FEATURES_CELL,
    HEADER,
    REGENERATE,
    documented_rows,
    measure,
    row_cells,
    table_row,
)

MODELS_MD = Path(__file__).resolve().parents[1] / "docs" / "MODELS.md"
DOCUMENTED = documented_rows(MODELS_MD) if MODELS_MD.is_file() else {}

#: variants big enough that building and a forward pass at full input take seconds on 2 cores.
LARGE_PARAMS = 60_000_000


def _marks(name):
    spec = keras_cnn.get_spec(name)
    return [pytest.mark.slow] if (spec.params or 0) >= LARGE_PARAMS else []


ALL = [pytest.param(n, marks=_marks(n), id=n) for n in keras_cnn.list_models()]


@pytest.mark.parametrize("name", ALL)
def test_variant_builds_runs_and_matches_reference_params(name):
    """At the variant's default input: exact trainable parameter count, docs/MODELS.md's row, and a forward
    pass giving finite outputs of the classifier's shape. Built without drawing the initializers' values
    and run on random values of the test's own (``conftest.forward_without_drawing``): drawing them in
    TensorFlow's initializers was 54 s of this harness's 91 s (quiet, 80 names); every other build in the
    suite draws them. ``conftest.UNTRAINED_OVERFLOW`` (resnet1202) runs in training mode."""
    spec = keras_cnn.get_spec(name)
    x = np.random.default_rng(0).uniform(0, 1, (1,) + tuple(spec.input_shape)).astype("float32")
    model, outputs = forward_without_drawing(lambda: keras_cnn.build(name), x, training=name in UNTRAINED_OVERFLOW)
    params = trainable_count(model)
    if spec.params is not None:
        if spec.params_tolerance:
            assert abs(params - spec.params) <= spec.params_tolerance * spec.params, (params, spec.params)
        else:
            assert params == spec.params, f"{name}: {params:,} trainable params, reference {spec.params:,}"
    # docs/MODELS.md's row (measured params and MACs, reference numbers, notes) is current; its "feature
    # channels" cell is checked by tests/test_features.py, which finds the levels on its own build
    # (finding them here took a second, weight-free build of every net)
    row = row_cells(table_row(name, measure(model, spec, features=[])))
    documented = row_cells(DOCUMENTED.get(name, "||"))
    del row[FEATURES_CELL], documented[FEATURES_CELL:FEATURES_CELL + 1]
    assert documented == row, f"docs/MODELS.md is stale: {REGENERATE}"
    for out in keras.tree.flatten(outputs):
        assert out.shape == (1, spec.num_classes) and np.all(np.isfinite(out))
    del model
    keras.backend.clear_session()
    gc.collect()


def test_models_table_lists_every_variant_once():
    text = MODELS_MD.read_text()
    assert text.startswith(HEADER), f"docs/MODELS.md header is stale: {REGENERATE}"
    assert list(DOCUMENTED) == keras_cnn.list_models(), f"docs/MODELS.md names are stale: {REGENERATE}"
    assert len(text.splitlines()) == len(HEADER.splitlines()) + len(DOCUMENTED)


def _smallest_per_builder():
    """The minimum input is a property of the builder (and its declared minimum): test the
    smallest variant of each (builder, minimum) pair rather than rebuilding every large net."""
    chosen = {}
    for name in keras_cnn.list_models():
        spec = keras_cnn.get_spec(name)
        key = (spec.builder, spec.min_input_size)
        if key not in chosen or (spec.params or 0) < (keras_cnn.get_spec(chosen[key]).params or 0):
            chosen[key] = name
    return sorted(chosen.values())


@pytest.mark.parametrize("name", _smallest_per_builder())
def test_variant_feature_extractor_accepts_minimum_input(name):
    spec = keras_cnn.get_spec(name)
    size = spec.min_input_size
    _, out = forward_without_drawing(
        lambda: keras_cnn.build(name, include_top=False, pooling="avg", input_shape=(size, size, 3)),
        np.zeros((1, size, size, 3), "float32"))
    assert out.ndim == 2 and out.shape[0] == 1
    with pytest.raises(ValueError, match="too small"):
        keras_cnn.build(name, include_top=False, input_shape=(size - 1, size, 3))
    keras.backend.clear_session()
