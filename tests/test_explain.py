"""keras_cnn.explain (issue #37): ZFNet's views and Grad-CAM.

* A known answer: resnet20 trained here (2 epochs, 1,000 images) to tell horizontal from vertical stripes in a
  10x10 square placed at random on uniform noise, where nothing outside the square tells the classes apart.
  On held-out images the maximum of the Grad-CAM and of the occlusion map falls inside the square (the pointing
  game) for >= 90 % of the images; the maximum of a random map does for about 10 % (100 of 1,024 pixels).
* The deconvnet: the projection of one first-layer unit is that unit's filter (times its activation), placed at
  the unit's receptive field, through padding (alexnet_owt) and through max pooling's switches (zfnet), random
  weights, and on the trained net (through BatchNorm); deeper, its rectification differs from the gradient.
* Every registered name: ``keras-cnn explain NAME IMAGE --method gradcam`` at the minimum input (random weights),
  on the level ``model_info(name)["features"]`` gives.
* Errors: ValueError naming what was received and what is allowed; the CLI's one line.
"""

from __future__ import annotations

import json
import time

import keras
import numpy as np
import pytest
from conftest import CliProcess

import keras_cnn
from keras_cnn import explain
from keras_cnn.registry import levels_of
from keras_cnn.training import optimizers

SIZE, PATCH = 32, 10


def evidence_images(count, seed):
    """``(images, labels, boxes)``: uniform noise, with a 10x10 square of stripes 2 pixels wide at a random place,
    horizontal for class 0 and vertical for class 1. ``boxes``: the square's (top, left, bottom, right)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 1.0, (count, SIZE, SIZE, 1)).astype("float32")
    labels = rng.integers(0, 2, count)
    rows = (np.arange(PATCH)[:, None] // 2) % 2 == 0
    horizontal = np.broadcast_to(rows, (PATCH, PATCH))
    boxes = []
    for k in range(count):
        top, left = (int(v) for v in rng.integers(0, SIZE - PATCH + 1, 2))
        stripes = horizontal if labels[k] == 0 else horizontal.T
        images[k, top:top + PATCH, left:left + PATCH, 0] = np.where(stripes, 0.95, 0.05)
        boxes.append((top, left, top + PATCH, left + PATCH))
    return images, labels, np.array(boxes)


def points_inside(heatmap, box) -> bool:
    row, column = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return box[0] <= row < box[2] and box[1] <= column < box[3]


@pytest.fixture(scope="module")
def trained():
    """resnet20 (1 channel, 2 classes) trained on 1,000 evidence images for 2 epochs (~30 s on 2 cores)."""
    keras.utils.set_random_seed(0)
    images, labels, _ = evidence_images(1000, seed=0)
    model = keras_cnn.build("resnet20", num_classes=2, input_shape=(SIZE, SIZE, 1))
    model.compile(optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, batch_size=32, epochs=2, verbose=0)
    return model


def test_pointing_game_gradcam_and_occlusion_find_the_evidence(trained):
    images, labels, boxes = evidence_images(60, seed=1)
    accuracy = float(np.mean(np.argmax(explain.predict_probabilities(trained, images), axis=1) == labels))
    assert accuracy >= 0.95, accuracy  # the net learned the task, so its evidence is the square

    started = time.perf_counter()
    cams = [explain.gradcam(trained, image, class_index=int(label)) for image, label in zip(images, labels)]
    gradcam_seconds = time.perf_counter() - started
    assert {cam.level for cam in cams} == {"P2"} and cams[0].cam.shape == (8, 8)  # the deepest map of >= 2x2
    gradcam_hits = np.mean([points_inside(cam.heatmap, box) for cam, box in zip(cams, boxes)])

    started = time.perf_counter()
    occluded = [explain.occlusion(trained, image, int(label), size=8, stride=3)
                for image, label in zip(images[:30], labels[:30])]
    occlusion_seconds = time.perf_counter() - started
    assert occluded[0].probability.shape == (9, 9) and occluded[0].heatmap.shape == (SIZE, SIZE)
    occlusion_hits = np.mean([points_inside(found.heatmap, box) for found, box in zip(occluded, boxes)])

    rng = np.random.default_rng(2)
    random_hits = np.mean([points_inside(rng.random((SIZE, SIZE)), box) for box in boxes])
    print(f"pointing game: Grad-CAM {gradcam_hits:.2f} ({gradcam_seconds:.1f} s for 60), occlusion "
          f"{occlusion_hits:.2f} ({occlusion_seconds:.1f} s for 30), random {random_hits:.2f}")
    assert gradcam_hits >= 0.9 and occlusion_hits >= 0.9, (gradcam_hits, occlusion_hits)
    assert random_hits <= 0.3, random_hits
    # the explained class matters: Grad-CAM of the wrong class has (almost) nothing to point at
    wrong = explain.gradcam(trained, images[0], class_index=1 - int(labels[0]))
    assert wrong.probability < 0.05 and cams[0].probability > 0.95


def _first_units_match_their_filters(model, image, layer, kernel_layer, top=4):
    """The deconvnet projections of ``layer``'s ``top`` strongest units (one per channel) are ``kernel_layer``'s
    filters: nothing outside the receptive field, correlation 1 inside (its sign: BatchNorm's factor may flip
    it). Units on the image's border see a cut filter; the rest (at least 2) are checked. Returns the result."""
    found = explain.deconvnet(model, image, layer=layer, top=top)
    kernel = explain.filters(model, kernel_layer).kernels  # (filters, kh, kw, channels)
    assert found.projections.shape == (top, *image.shape)
    checked = 0
    for channel, box, projection in zip(found.channels, found.boxes, found.projections):
        top_, left, bottom, right = box
        patch = projection[top_:bottom, left:right]
        outside = projection.copy()
        outside[top_:bottom, left:right] = 0
        assert not outside.any() and patch.any()  # nothing outside the receptive field
        if patch.shape != kernel.shape[1:]:
            continue  # a unit on the border: part of its filter falls on the padding
        correlation = np.corrcoef(patch.ravel(), kernel[channel].ravel())[0, 1]
        assert abs(correlation) > 0.9999, (channel, correlation)
        checked += 1
    assert checked >= 2, found.boxes
    return found


def test_deconvnet_projection_of_a_first_layer_unit_is_its_filter(trained):
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    alexnet = keras_cnn.build("alexnet_owt", input_shape=(95, 95, 3), num_classes=10)  # random weights, padding 2
    found = _first_units_match_their_filters(alexnet, rng.random((95, 95, 3), dtype="float32"), "P2", "conv1", top=6)
    assert found.layer == "conv1_relu"
    for (row, column), box in zip(found.positions, found.boxes):  # stride 4 after 2 pixels of padding
        assert tuple(box[:2]) == (max(0, 4 * row - 2), max(0, 4 * column - 2))
    kernel = alexnet.get_layer("conv1").kernel.numpy()
    interior = [i for i, box in enumerate(found.boxes) if (box[2] - box[0], box[3] - box[1]) == (11, 11)]
    for i in interior:  # exactly the filter times the activation
        top, left, bottom, right = found.boxes[i]
        expected = kernel[:, :, :, found.channels[i]] * found.activations[i]
        np.testing.assert_allclose(found.projections[i][top:bottom, left:right], expected, rtol=1e-4, atol=1e-6)
    # zfnet's P2 is after LRN and max pooling: back through the pooling switches and (unchanged) the LRN
    zfnet = keras_cnn.build("zfnet", input_shape=(85, 85, 3), num_classes=10)
    found = _first_units_match_their_filters(zfnet, rng.random((85, 85, 3), dtype="float32"), "P2", "conv1")
    assert found.layer == "pool1"
    # the trained net: conv -> BatchNorm -> ReLU; the projection is the filter scaled by BatchNorm's factor
    images, _, boxes = evidence_images(8, seed=3)
    _first_units_match_their_filters(trained, images[0], "stem_act", None)


def test_deconvnet_rectifies_the_signal_and_leaves_the_model_as_it_was():
    keras.utils.set_random_seed(1)
    model = keras_cnn.build("alexnet_owt", input_shape=(95, 95, 3), num_classes=10)
    image = np.random.default_rng(1).random((95, 95, 3), dtype="float32")
    relu_layer = model.get_layer("conv1_relu")
    before = model.predict(image[None], verbose=0)
    found = explain.deconvnet(model, image, layer="P4", top=2)
    assert "call" not in vars(relu_layer)  # the rectification rule is removed again
    np.testing.assert_array_equal(model.predict(image[None], verbose=0), before)
    # the plain gradient of the same activation (ReLU backward = mask) is another picture
    import tensorflow as tf

    sub = keras.Model(model.input, model.get_layer(found.layer).output)
    x = tf.convert_to_tensor(image[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        maps = sub(x)
        row, column = found.positions[0]
        score = maps[0, row, column, int(found.channels[0])]
    gradient = tape.gradient(score, x).numpy()[0]
    projection = found.projections[0]
    assert np.corrcoef(projection.ravel(), gradient.ravel())[0, 1] < 0.99


def test_filters_and_feature_maps_arrays():
    keras.utils.set_random_seed(0)
    model = keras_cnn.build("alexnet_owt", input_shape=(95, 95, 3), num_classes=10)
    found = explain.filters(model)
    assert found.layer == "conv1" and found.kernels.shape == (64, 11, 11, 3)
    assert found.grid.shape == (8 * 12 + 1, 8 * 12 + 1, 3) and found.grid.min() == 0.0 and found.grid.max() == 1.0
    np.testing.assert_allclose(found.kernels[5], np.moveaxis(model.get_layer("conv1").kernel.numpy(), 3, 0)[5])
    image = np.random.default_rng(0).random((95, 95, 3), dtype="float32")
    maps = explain.feature_maps(model, image, "P3", top=5)
    full = keras.Model(model.input, model.get_layer("conv2_relu").output)(image[None]).numpy()[0]
    assert maps.layer == "conv2_relu" and maps.total == 192 and maps.maps.shape == (5, *full.shape[:2])
    np.testing.assert_array_equal(maps.channels, np.argsort(-full.mean(axis=(0, 1)), kind="stable")[:5])
    np.testing.assert_allclose(maps.maps[0], full[:, :, maps.channels[0]], rtol=1e-5, atol=1e-6)
    assert list(maps.strength) == sorted(maps.strength, reverse=True)
    # RepVGG's first layer is a block of three branches: its filters are the fused 3x3 kernel
    repvgg = keras_cnn.build("repvgg_a0", input_shape=(32, 32, 3), num_classes=10)
    assert explain.filters(repvgg).kernels.shape[1:] == (3, 3, 3)


def test_bad_input_names_what_was_received_and_what_is_allowed():
    model = keras_cnn.build("resnet20", num_classes=10)
    image = np.zeros((32, 32, 3), "float32")
    with pytest.raises(ValueError, match=r"unknown layer 'stage2_block3_ot'.*Did you mean: stage2_block3_out.*P0"):
        explain.gradcam(model, image, layer="stage2_block3_ot")
    with pytest.raises(ValueError, match=r"expected one image of shape \(32, 32, 3\).*\(28, 28, 1\)"):
        explain.gradcam(model, np.zeros((28, 28, 1), "float32"))
    with pytest.raises(ValueError, match=r"unknown method 'gradcm'.*Did you mean: gradcam"):
        explain.explain("resnet20", [], "gradcm")
    with pytest.raises(ValueError, match=r"size must be 1\.\.32 pixels.*size=40"):
        explain.occlusion(model, image, size=40)
    from keras_cnn.explain.targets import resolve_class

    with pytest.raises(ValueError, match=r"unknown class 'cta'.*Did you mean: cat"):
        resolve_class(["cat", "dog"], "cta")
    with pytest.raises(ValueError, match=r"class index 7 is out of range.*2 classes"):
        resolve_class(["cat", "dog"], "7")


def test_gradcam_and_deconvnet_refuse_jax_in_their_own_process(tmp_path):
    """On JAX the gradient methods name the supported backends; occlusion still runs."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np, keras_cnn\nfrom keras_cnn import explain\n"
            "m = keras_cnn.build('lenet5')\nx = np.zeros((32, 32, 1), 'float32')\n"
            "print('occlusion', explain.occlusion(m, x, size=8).probability.shape)\n"
            "try:\n    explain.gradcam(m, x)\nexcept ValueError as e:\n    print('refused', e)\n")
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "KERAS_BACKEND": "jax"}, cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "occlusion (7, 7)" in result.stdout, result.stdout
    assert "refused grad-cam needs gradients" in result.stdout and "tensorflow and torch" in result.stdout


TORCH_SIDE = """
import sys, numpy as np, keras, keras_cnn
from keras_cnn import explain
folder = sys.argv[1]
model = keras_cnn.build("alexnet_owt", input_shape=(95, 95, 3), num_classes=10)
model.load_weights(folder + "/alexnet.weights.h5")
image = np.load(folder + "/image.npy")
cam = explain.gradcam(model, image, class_index=3, layer="P4")
found = explain.deconvnet(model, image, layer="P3", top=3)
np.savez(folder + "/torch.npz", cam=cam.cam, probability=cam.probability, projections=found.projections,
         channels=found.channels, backend=keras.backend.backend())
"""


def test_gradcam_and_deconvnet_on_torch_equal_tensorflow(tmp_path):
    """The same weights and image on the torch backend (a new process): the same Grad-CAM map and deconvnet
    projections as TensorFlow's, within float32 rounding."""
    import os
    import subprocess
    import sys

    pytest.importorskip("torch")
    keras.utils.set_random_seed(3)
    model = keras_cnn.build("alexnet_owt", input_shape=(95, 95, 3), num_classes=10)
    model.save_weights(tmp_path / "alexnet.weights.h5")
    image = np.random.default_rng(3).random((95, 95, 3), dtype="float32")
    np.save(tmp_path / "image.npy", image)
    cam = explain.gradcam(model, image, class_index=3, layer="P4")
    found = explain.deconvnet(model, image, layer="P3", top=3)
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", TORCH_SIDE, str(tmp_path)], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    torch_side = np.load(tmp_path / "torch.npz")
    assert str(torch_side["backend"]) == "torch"
    assert cam.cam.max() > 0
    np.testing.assert_allclose(torch_side["cam"], cam.cam, rtol=1e-3, atol=1e-4 * cam.cam.max())
    assert float(torch_side["probability"]) == pytest.approx(cam.probability, rel=1e-4)
    np.testing.assert_array_equal(torch_side["channels"], found.channels)
    scale = np.abs(found.projections).max()
    np.testing.assert_allclose(torch_side["projections"], found.projections, atol=1e-4 * scale)


SHARDS = 4  # the names in 4 tests, so that pytest-xdist's two workers share them (~1,000 s serial under load)
OVERFLOWS_UNTRAINED = ("resnet1202",)
CHECKED_LEVELS = ("lenet5", "alexnet_owt", "resnet20", "densenet121", "mobilenet_v3_small", "nin", "darknet19")


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS))
def test_gradcam_runs_on_every_registered_name_at_its_minimum_input(shard, tmp_path):
    """``keras-cnn explain NAME IMAGE --method gradcam --input-shape MIN,MIN,C`` for every registered name
    (random weights; one child process per shard of the names): a picture, and a layer that is one of the name's
    feature levels (``model_info(name)["features"]``; checked against ``levels_of`` for a few names, among them
    those whose classifier has 4-D maps after its body, whose probe builds would double this test's time for all)."""
    from PIL import Image

    names = keras_cnn.list_models()[shard::SHARDS]
    cli = CliProcess(tmp_path)
    started, failures, chosen = time.perf_counter(), [], {}
    try:
        for name in names:
            spec = keras_cnn.get_spec(name)
            size, channels = spec.min_input_size, spec.input_shape[-1]
            picture = tmp_path / f"{name}.png"
            pixels = np.random.default_rng(0).integers(0, 256, (size, size, channels), dtype=np.uint8)
            Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels).save(picture)
            result = cli(["explain", name, picture, "--method", "gradcam", "--input-shape", f"{size},{size},{channels}",
                          "--output", tmp_path / name])
            if result.returncode != 0:
                failures.append(f"{name}: {result.stderr.strip()[-800:]}")
                continue
            [entry] = json.loads((tmp_path / name / "index.json").read_text())["pictures"]
            chosen[name] = entry
            assert entry["level"] is not None and entry["level"].startswith("P"), (name, entry)  # a feature level
            assert all(0 <= v < size for v in entry["peak"]), (name, entry)
            # an untrained resnet1202 overflows to NaN in inference mode (600 residual sums, BatchNorm's unit
            # statistics): shapes only for it, as in the parameter harness
            assert 0 <= entry["probability"] <= 1 or (name in OVERFLOWS_UNTRAINED and np.isnan(entry["probability"])), \
                (name, entry)
            with Image.open(tmp_path / name / entry["file"]) as shown:
                assert shown.width > 200 and shown.height > 100, (name, shown.size)
    finally:
        cli.close()
    print(f"gradcam on {len(names)} names: {time.perf_counter() - started:.0f} s")
    assert not failures, "\n".join(failures)
    for name in (n for n in CHECKED_LEVELS if n in chosen):
        size, channels = keras_cnn.get_spec(name).min_input_size, keras_cnn.get_spec(name).input_shape[-1]
        levels = levels_of(name, input_shape=(size, size, channels))
        spatial = [level for level in levels if level["size"] >= 2] or levels
        assert (chosen[name]["level"], chosen[name]["layer"]) == (spatial[-1]["level"], spatial[-1]["layer"]), name


def test_docstring_examples_run():
    import doctest

    import keras_cnn.explain as package
    from keras_cnn.explain import methods, targets

    for module in (package, methods, targets):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, (module.__name__, result)
