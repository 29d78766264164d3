"""Trained weights beyond the per-pair logits (tests/test_weights_pairs.py): where files come from,
what is refused, how errors read, heads for fine-tuning, and what a model with weights carries.

No network: downloads are served by an ``http.server`` on 127.0.0.1 (and ``file://`` URLs), and the
checkpoints are torchvision's own state_dicts of randomly initialized models.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the test extra installs torch")
torchvision = pytest.importorskip("torchvision")

import keras_cnn  # noqa: E402
from keras_cnn import weights  # noqa: E402
from keras_cnn.weights.download import MIRROR_VARIABLE, cache_folder, fetch  # noqa: E402


@pytest.fixture(scope="module")
def resnet18_state():
    """torchvision's resnet18 state_dict with random weights and BatchNorm statistics."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
    return model.eval(), model.state_dict()


@pytest.fixture
def resnet18_pth(resnet18_state, tmp_path):
    path = tmp_path / "resnet18_random.pth"
    torch.save(resnet18_state[1], path)
    return path


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.delenv(MIRROR_VARIABLE, raising=False)
    return home


class _Server:
    """A static file server on 127.0.0.1 that counts the requests for each path."""

    def __init__(self, folder):
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (http.server's name)
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    started = _Server(folder)
    started.folder = folder
    yield started
    started.close()


# --------------------------------------------------------------------------- downloads
def test_download_is_cached_and_a_second_call_does_not_download(server, keras_home, resnet18_pth):
    served = server.folder / "resnet18-0000.pth"
    served.write_bytes(resnet18_pth.read_bytes())
    digest = hashlib.sha256(served.read_bytes()).hexdigest()

    first = fetch(f"{server.url}/resnet18-0000.pth", digest)
    assert first == cache_folder() / "resnet18-0000.pth" and first.read_bytes() == served.read_bytes()
    assert str(first).startswith(str(keras_home))
    second = fetch(f"{server.url}/resnet18-0000.pth", digest[:8])  # a prefix is what torchvision publishes
    assert second == first and server.requests == ["/resnet18-0000.pth"], server.requests
    assert sorted(p.name for p in cache_folder().iterdir()) == ["resnet18-0000.pth"]


def test_file_urls_download_too(tmp_path, keras_home, resnet18_pth):
    digest = hashlib.sha256(resnet18_pth.read_bytes()).hexdigest()
    path = fetch(resnet18_pth.as_uri(), digest)
    assert path.read_bytes() == resnet18_pth.read_bytes()


def test_a_wrong_hash_raises_and_leaves_nothing_in_the_cache(server, keras_home, resnet18_pth):
    (server.folder / "resnet18-0000.pth").write_bytes(resnet18_pth.read_bytes())
    with pytest.raises(ValueError, match="sha256 .* does not match the published 0123abcd"):
        fetch(f"{server.url}/resnet18-0000.pth", "0123abcd")
    assert not cache_folder().exists() or list(cache_folder().iterdir()) == []


def test_build_with_a_library_source_downloads_by_the_mirror_and_checks_the_hash(server, keras_home,
                                                                                 resnet18_pth, monkeypatch):
    """``weights="torchvision"`` fetches torchvision's file name; served through a mirror with other
    content, the published hash prefix (f37072fd) refuses it and nothing stays in the cache."""
    (server.folder / "resnet18-f37072fd.pth").write_bytes(resnet18_pth.read_bytes())
    monkeypatch.setenv(MIRROR_VARIABLE, server.url)
    with pytest.raises(ValueError, match="resnet18-f37072fd.pth: sha256 .* does not match the published f37072fd"):
        keras_cnn.build("resnet18", weights="torchvision")
    assert server.requests == ["/resnet18-f37072fd.pth"]
    assert list(cache_folder().iterdir()) == []


def test_a_file_at_the_cache_path_with_another_hash_is_moved_aside_never_deleted(tmp_path):
    """As a user meets it, in new processes. Offline, ``keras-cnn convert`` says where to put the file; the user
    puts a wrong file there: the next run moves it aside (its own name, with its digest), and the one error line
    says where it went and which hash it had against the published one. An older download in the cache is
    moved aside the same way and the published file is downloaded; a name already taken is never overwritten."""
    home = tmp_path / "keras_home"
    cache = home / "models" / "keras_cnn"
    cache.mkdir(parents=True)
    by_hand = cache / "resnet18-f37072fd.pth"  # the path the offline error names for resnet18's checkpoint
    by_hand.write_bytes(b"a file the user put here by hand")
    got = hashlib.sha256(by_hand.read_bytes()).hexdigest()
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_HOME": str(home),
                   MIRROR_VARIABLE: "http://127.0.0.1:9"}  # the discard port: offline
    result = subprocess.run([str(Path(sys.executable).with_name("keras-cnn")), "convert", "resnet18", "imagenet",
                             "--output", "resnet18.keras"], cwd=tmp_path, env=environment, capture_output=True,
                            text=True, timeout=600)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and lines[-1].startswith("keras-cnn: error:"), result.stderr[-3000:]
    aside = cache / f"resnet18-f37072fd.pth.{got[:8]}.sha256-mismatch"
    assert (f"The file at {by_hand} has sha256 {got}, not the published f37072fd" in lines[-1]
            and f"it was moved aside to {aside.name}. Could not download http://127.0.0.1:9/resnet18-f37072fd.pth"
            in lines[-1] and "put the published file at that path" in lines[-1]
            and lines[-1].endswith("weights=")), lines[-1]  # all of it: the CLI cuts a line at 600 characters
    assert aside.read_bytes() == b"a file the user put here by hand" and not by_hand.exists()
    assert sorted(p.name for p in cache.iterdir()) == [aside.name]

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "net-0000.pth").write_bytes(b"the published file")
    published = hashlib.sha256(b"the published file").hexdigest()
    (cache / "net-0000.pth").write_bytes(b"an older download")
    older = hashlib.sha256(b"an older download").hexdigest()
    taken = cache / f"net-0000.pth.{older[:8]}.sha256-mismatch"
    taken.write_bytes(b"set aside on an earlier day")
    script = "import sys; from keras_cnn.weights.download import fetch; print(fetch(sys.argv[1], sys.argv[2]))"
    result = subprocess.run([sys.executable, "-c", script, "https://example.invalid/net-0000.pth", published],
                            env={**environment, MIRROR_VARIABLE: mirror.as_uri()}, capture_output=True, text=True,
                            timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == str(cache / "net-0000.pth")
    assert (cache / "net-0000.pth").read_bytes() == b"the published file"
    again = cache / f"{taken.name}-2"
    assert again.read_bytes() == b"an older download" and taken.read_bytes() == b"set aside on an earlier day"
    assert (f"The file at {cache / 'net-0000.pth'} has sha256 {older}, not the published {published}; it was "
            f"moved aside to {again.name}; the published file was downloaded" in result.stderr), result.stderr[-3000:]
    assert sorted(p.name for p in cache.iterdir()) == sorted([aside.name, "net-0000.pth", taken.name, again.name])


def test_imagenet_is_the_first_declared_checkpoint(server, keras_home, resnet18_pth, monkeypatch):
    """``weights="imagenet"`` (keras.applications' word) names each variant's first declared checkpoint, and
    ``"cifar10"`` the CIFAR ResNets' (every variant's checkpoints are trained on one data set): for resnet18 the
    same torchvision file as ``"torchvision"``, fetched by the same name from the mirror."""
    from keras_cnn.registry import get_spec

    cifar = []
    for name in keras_cnn.list_models():
        spec = get_spec(name)
        if spec.checkpoints:
            dataset = spec.checkpoints[0].dataset
            assert weights.checkpoint_for(spec, dataset) == spec.checkpoints[0], name
            cifar += [name] if dataset == "cifar10" else []
    assert cifar == ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202"]
    (server.folder / "resnet18-f37072fd.pth").write_bytes(resnet18_pth.read_bytes())
    monkeypatch.setenv(MIRROR_VARIABLE, server.url)
    for source in ("torchvision", "imagenet"):
        with pytest.raises(ValueError, match="resnet18-f37072fd.pth: sha256 .* does not match the published f37072fd"):
            keras_cnn.build("resnet18", weights=source)
    assert server.requests == ["/resnet18-f37072fd.pth"] * 2


def test_offline_the_error_names_the_url_and_where_to_put_the_file(keras_home, monkeypatch):
    monkeypatch.setenv(MIRROR_VARIABLE, "http://127.0.0.1:9")  # the discard port: connection refused
    with pytest.raises(ValueError) as error:
        keras_cnn.build("resnet18", weights="torchvision:IMAGENET1K_V1")
    message = str(error.value)
    assert "http://127.0.0.1:9/resnet18-f37072fd.pth" in message
    assert str(cache_folder() / "resnet18-f37072fd.pth") in message
    assert not list(cache_folder().glob("*"))


def test_sources_are_checked_before_anything_is_built():
    with pytest.raises(ValueError, match="unknown torchvision checkpoint 'IMAGENET1K_V3'.*IMAGENET1K_V2"):
        keras_cnn.build("resnet50", weights="torchvision:IMAGENET1K_V3")
    with pytest.raises(ValueError, match="lenet5: no torchvision checkpoint is known.*no published checkpoint"):
        keras_cnn.build("lenet5", weights="torchvision")
    with pytest.raises(ValueError, match=r"lenet5: weights='imagenet' means .* none is published for lenet5"):
        keras_cnn.build("lenet5", weights="imagenet")
    with pytest.raises(ValueError, match="neither a file nor a folder"):
        keras_cnn.build("resnet18", weights="no_such_file.pth")


class _Hub(_Server):
    """A Hugging Face hub on 127.0.0.1: ``HEAD /timm/REPO/resolve/main/model.safetensors`` answers 302
    with the file's sha256 in ``X-Linked-Etag`` (as huggingface.co does for LFS files); ``GET``
    redirects to the file under ``/cdn/REPO/``, as the hub sends its CDN's address."""

    def __init__(self, folder, sha256=None):
        self.requests, self.sha256 = [], dict(sha256 or {})
        hub = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def _redirect(self):
                parts = self.path.strip("/").split("/")  # timm, REPO, resolve, main, FILE
                if len(parts) != 5 or parts[2] != "resolve":
                    return False
                self.send_response(302)
                self.send_header("Location", f"/cdn/{parts[1]}/{parts[4]}")
                self.send_header("X-Linked-Etag", f'"{hub.sha256.get(parts[1], "")}"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True

            def do_HEAD(self):  # noqa: N802
                hub.requests.append(("HEAD", self.path))
                self._redirect() or super().do_HEAD()

            def do_GET(self):  # noqa: N802
                hub.requests.append(("GET", self.path))
                self._redirect() or super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_timm_checkpoints_download_checked_against_the_sha256_the_hub_publishes(tmp_path, keras_home, monkeypatch):
    """``weights="timm"``: the hash comes from the hub's ``X-Linked-Etag``, the file through its redirect;
    the digest is kept beside the cached file, so the second build asks nothing; a file that does not
    match the published hash is refused and leaves nothing behind."""
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    reference = timm.create_model("repvgg_a0", pretrained=False)
    served = tmp_path / "hub"
    (served / "cdn" / "repvgg_a0.rvgg_in1k").mkdir(parents=True)
    file = served / "cdn" / "repvgg_a0.rvgg_in1k" / "model.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(file))
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    hub = _Hub(served, {"repvgg_a0.rvgg_in1k": digest})
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    try:
        model = keras_cnn.build("repvgg_a0", weights="timm", input_shape=(64, 64, 3))
        assert hub.requests == [("HEAD", "/timm/repvgg_a0.rvgg_in1k/resolve/main/model.safetensors"),
                                ("GET", "/timm/repvgg_a0.rvgg_in1k/resolve/main/model.safetensors"),
                                ("GET", "/cdn/repvgg_a0.rvgg_in1k/model.safetensors")], hub.requests
        cached = cache_folder() / "repvgg_a0.rvgg_in1k.safetensors"
        assert cached.read_bytes() == file.read_bytes()
        assert (cache_folder() / "repvgg_a0.rvgg_in1k.safetensors.sha256").read_text().strip() == digest
        expected = reference.state_dict()["stem.conv_kxk.conv.weight"].numpy().transpose(2, 3, 1, 0)
        assert np.array_equal(np.array(model.get_layer("stem").conv3.kernel), expected)

        hub.requests.clear()
        keras_cnn.build("repvgg_a0", weights="timm:repvgg_a0.rvgg_in1k", input_shape=(64, 64, 3))
        assert hub.requests == [], "the cached file is checked against its recorded digest, offline"
        # "imagenet" is repvgg_a0's first declared checkpoint, timm's: the same cached file, the same weights
        model = keras_cnn.build("repvgg_a0", weights="imagenet", input_shape=(64, 64, 3))
        assert hub.requests == [] and np.array_equal(np.array(model.get_layer("stem").conv3.kernel), expected)

        for leftover in cache_folder().iterdir():
            leftover.unlink()
        hub.sha256["repvgg_a0.rvgg_in1k"] = "0" * 64  # the hub publishes another file's hash
        with pytest.raises(ValueError, match="does not match the published 0000"):
            keras_cnn.build("repvgg_a0", weights="timm", input_shape=(64, 64, 3))
        assert list(cache_folder().iterdir()) == []
    finally:
        hub.close()
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # offline
    with pytest.raises(ValueError, match="could not read the published sha256 of http://127.0.0.1:9/timm/"):
        keras_cnn.build("repvgg_a0", weights="timm", input_shape=(64, 64, 3))


# --------------------------------------------------------------------------- what is refused
class NotATensor:
    pass


def test_a_pickled_object_other_than_tensors_is_refused(tmp_path, resnet18_state):
    state = dict(resnet18_state[1])
    state["trojan"] = NotATensor()
    torch.save(state, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="evil.pth was refused: it holds pickled objects other than tensors"):
        keras_cnn.build("resnet18", weights=str(tmp_path / "evil.pth"))
    torch.save(resnet18_state[0], tmp_path / "whole_module.pth")  # a pickled nn.Module, not a state_dict
    with pytest.raises(ValueError, match="whole_module.pth was refused"):
        keras_cnn.build("resnet18", weights=str(tmp_path / "whole_module.pth"))


def test_torch_hub_th_files_read_like_pth(tmp_path, resnet18_state):
    """torch.hub's ``.th`` files as training scripts save them (akamaster/pytorch_resnet_cifar10's
    ``resnet20-12fca82f.th``): ``{"state_dict": ..., "best_prec1": ...}`` with DataParallel's ``module.`` keys. The
    file loads like a ``.pth``; into the CIFAR ResNets (akamaster's layout) the error lists the keys that differ."""
    state = {f"module.{key}": value for key, value in resnet18_state[1].items()}
    torch.save({"state_dict": state, "best_prec1": 91.78}, tmp_path / "resnet18-0123abcd.th")
    model = keras_cnn.build("resnet18", weights=str(tmp_path / "resnet18-0123abcd.th"), input_shape=(64, 64, 3))
    expected = resnet18_state[1]["conv1.weight"].numpy().transpose(2, 3, 1, 0)
    assert np.array_equal(np.array(model.get_layer("stem_conv").kernel), expected)
    with pytest.raises(ValueError, match=r"resnet20: cannot load .*resnet18-0123abcd.th: missing keys .*"
                                         r"layer1\.2\.conv1\.weight.*unexpected keys .*shape mismatches"):
        keras_cnn.build("resnet20", weights=str(tmp_path / "resnet18-0123abcd.th"))


# --------------------------------------------------------------------------- the CIFAR ResNets' checkpoints
def _cifar_reference(depth=20, seed=0):
    """A CIFAR ResNet as akamaster/pytorch_resnet_cifar10 builds it, random weights and BatchNorm statistics."""
    from test_weights_pairs import reference_model

    torch.manual_seed(seed)
    return reference_model(f"akamaster:resnet{depth}")


def _save_th(model, path):
    """As the repository's trainer saves a DataParallel model: ``{"state_dict": {"module." + key: ...}, ...}``."""
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "best_prec1": 91.0}, path)
    return path


def _reference_logits(model, images):
    mean, std = np.array([0.485, 0.456, 0.406], "float32"), np.array([0.229, 0.224, 0.225], "float32")
    with torch.no_grad():
        return model(torch.from_numpy(((images - mean) / std).transpose(0, 3, 1, 2).copy())).numpy()


def test_cifar_resnets_declare_akamaster_files_by_their_sha256():
    """Each CIFAR ResNet's checkpoint is akamaster/pytorch_resnet_cifar10's file (GitHub URL, ``.th``), CIFAR-10's
    ten classes at 32x32 with ImageNet's normalization, under ``"akamaster"``, ``"akamaster:resnetN"`` and
    ``"cifar10"``; resnet20-56 declare the full sha256 (of the published files), resnet110 and resnet1202 the 8
    hex digits their names carry (their files were not at hand). ``"imagenet"`` is refused, naming what exists."""
    from keras_cnn.registry import get_spec

    full = {20: "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8",
            32: "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850",
            44: "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4",
            56: "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367",
            110: "1d1ed7c2", 1202: "f3b1deed"}
    for depth, sha256 in full.items():
        spec = get_spec(f"resnet{depth}")
        [checkpoint] = spec.checkpoints
        assert checkpoint.url == ("https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/"
                                  f"resnet{depth}-{sha256[:8]}.th")
        assert checkpoint.sha256 == sha256 and checkpoint.filename == f"resnet{depth}-{sha256[:8]}.th"
        assert (checkpoint.layout, checkpoint.dataset, checkpoint.num_classes) == ("akamaster", "cifar10", 10)
        assert (checkpoint.crop_size, checkpoint.resize_size, checkpoint.mean) == (32, 32, (0.485, 0.456, 0.406))
        for source in ("akamaster", f"akamaster:resnet{depth}", "cifar10"):
            assert weights.checkpoint_for(spec, source) is checkpoint, source
    with pytest.raises(ValueError, match=r"resnet20: weights='imagenet' means .* none is published for resnet20 "
                                         r"\(its checkpoints are trained on cifar10: weights='cifar10' or one of "
                                         r"\['akamaster:resnet20'\]\)"):
        keras_cnn.build("resnet20", weights="imagenet")
    with pytest.raises(ValueError, match=r"resnet18: weights='cifar10' means .* trained on imagenet"):
        keras_cnn.build("resnet18", weights="cifar10")
    with pytest.raises(ValueError, match="resnet18: no akamaster checkpoint is known for this variant; it has "
                                         "torchvision checkpoints"):
        keras_cnn.build("resnet18", weights="akamaster")
    from keras_cnn.models.spec import Checkpoint

    with pytest.raises(ValueError, match=r"checkpoint 'x': dataset must be one of \('imagenet', 'cifar10'\), "
                                         r"received 'mnist'"):
        Checkpoint(url="https://example.invalid/x.pth", sha256="", layout="timm", tag="x", dataset="mnist")
    info = keras_cnn.model_info("resnet20", measure=False)["checkpoints"]
    assert info == [{"source": "akamaster:resnet20", "url": get_spec("resnet20").checkpoints[0].url,
                     "sha256": full[20], "downloads": True, "top1": 91.73, "num_classes": 10,
                     "options": {"shortcut": "A"}, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                     "resize_size": 32, "crop_size": 32, "interpolation": "bilinear", "dataset": "cifar10"}]


def test_akamaster_downloads_are_checked_and_load_the_reference(server, keras_home, tmp_path, monkeypatch):
    """``weights="akamaster"`` fetches the declared file name through the mirror: a file with other content is
    refused against resnet20's full published sha256 (resnet110's: the prefix its name carries) and leaves nothing
    in the cache; the file whose hash the row declares is cached once and gives the reference's logits, with the
    checkpoint's normalization, crop and classes recorded in the model."""
    import dataclasses

    from keras_cnn.models.spec import SPECS

    reference = _cifar_reference(20)
    served = _save_th(reference, server.folder / "resnet20-12fca82f.th")
    _save_th(_cifar_reference(110), server.folder / "resnet110-1d1ed7c2.th")
    monkeypatch.setenv(MIRROR_VARIABLE, server.url)
    published = SPECS["resnet20"].checkpoints[0].sha256
    with pytest.raises(ValueError, match=f"resnet20-12fca82f.th: sha256 .* does not match the published {published};"):
        keras_cnn.build("resnet20", weights="akamaster")
    with pytest.raises(ValueError, match="resnet110-1d1ed7c2.th: sha256 .* does not match the published 1d1ed7c2;"):
        keras_cnn.build("resnet110", weights="cifar10")
    assert list(cache_folder().iterdir()) == []

    digest = hashlib.sha256(served.read_bytes()).hexdigest()  # this file as if it were the published one
    spec = SPECS["resnet20"]
    monkeypatch.setitem(SPECS, "resnet20", dataclasses.replace(
        spec, checkpoints=(dataclasses.replace(spec.checkpoints[0], sha256=digest),)))
    server.requests.clear()
    images = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    for _ in range(2):
        model = keras_cnn.build("resnet20", weights="akamaster", classifier_activation=None)
        got = np.asarray(model(images, training=False))
        expected = _reference_logits(reference, images)
        assert np.abs(got - expected).max() <= 2e-5 * np.abs(expected).max()
    assert server.requests == ["/resnet20-12fca82f.th"], server.requests
    assert (cache_folder() / "resnet20-12fca82f.th").read_bytes() == served.read_bytes()
    layer = model.get_layer("checkpoint_normalization")
    assert (layer.checkpoint, layer.dataset, layer.crop_size) == ("akamaster:resnet20", "cifar10", 32)


def test_a_cifar_checkpoint_converts_predicts_cifar10_classes_and_evaluates(tmp_path, capsys):
    """``keras-cnn convert resnet20 FILE.th`` (akamaster's format), then ``predict`` names CIFAR-10's classes for a
    32x32 image and a larger one (resized and center-cropped to 32x32 as the checkpoint's input), ranked as the
    reference ranks them; ``evaluate --dataset cifar10`` (tfds, its mock data here: tfds cannot download offline)
    scores the [0, 1] images the model expects; a ``.weights.h5`` file keeps the checkpoint's data set."""
    import json

    import tensorflow_datasets as tfds
    from PIL import Image

    from keras_cnn import data
    from keras_cnn.cli import main

    reference = _cifar_reference(20, seed=3)
    th = _save_th(reference, tmp_path / "resnet20-0123abcd.th")
    keras_file, h5_file = tmp_path / "resnet20.keras", tmp_path / "resnet20.weights.h5"
    for output in (keras_file, h5_file):
        assert main(["convert", "resnet20", str(th), "--output", str(output)]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["classes"] == 10 and report["checkpoint"]["dataset"] == "cifar10", report
        assert (report["checkpoint"]["crop_size"], report["checkpoint"]["resize_size"]) == (32, 32), report

    rng = np.random.default_rng(0)
    small, large = (rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((32, 32, 3), (40, 48, 3)))
    Image.fromarray(small).save(tmp_path / "small.png")
    Image.fromarray(large).save(tmp_path / "large.png")
    assert main(["predict", str(keras_file), str(tmp_path / "small.png"), str(tmp_path / "large.png"), "--top",
                 "10"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    ranked = [[entry.rsplit(" ", 1)[0] for entry in line.split(": ", 1)[1].split(", ")] for line in lines]
    assert [sorted(names) for names in ranked] == [sorted(weights.CIFAR10_CLASSES)] * 2, lines
    expected = _reference_logits(reference, small[None].astype("float32") / 255.0)[0]
    assert ranked[0] == [weights.CIFAR10_CLASSES[i] for i in np.argsort(-expected)], (lines[0], expected)
    cropped = np.asarray(Image.fromarray(large).resize((38, 32), Image.BILINEAR))[:, 3:35]  # shorter side 32
    expected = _reference_logits(reference, cropped[None].astype("float32") / 255.0)[0]
    assert ranked[1][0] == weights.CIFAR10_CLASSES[int(np.argmax(expected))], (lines[1], expected)

    with tfds.testing.mock_data(num_examples=16):
        assert main(["evaluate", str(keras_file), "--dataset", "cifar10"]) == 0
        summary = json.loads(capsys.readouterr().out)
        arrays = data.load_arrays("cifar10", "test")
    probabilities = _reference_logits(reference, arrays.images.astype("float32") / 255.0)
    assert summary["test_images"] == 16 and summary["image_size"] == 32, summary
    assert summary["test_top1"] == pytest.approx(np.mean(probabilities.argmax(-1) == arrays.labels), abs=1e-4)

    rebuilt = keras_cnn.build("resnet20", weights=str(h5_file))
    assert rebuilt.get_layer("checkpoint_normalization").dataset == "cifar10"

    # a run fine-tuning the checkpoint on another data set (digits' ten classes) no longer names CIFAR-10's
    from keras_cnn.training.run import RunConfig, build_from_config

    for dataset, recorded in (("digits", ""), ("cifar10", "cifar10")):
        config = RunConfig(model="resnet20", dataset=dataset, weights=str(th), image_size=32, channels=3,
                           num_classes=10)
        assert build_from_config(config).get_layer("checkpoint_normalization").dataset == recorded, dataset


def test_damaged_files_are_value_errors(tmp_path, resnet18_pth):
    content = resnet18_pth.read_bytes()
    (tmp_path / "cut.pth").write_bytes(content[: len(content) // 3])
    with pytest.raises(ValueError, match="cut.pth is not a readable PyTorch checkpoint"):
        keras_cnn.build("resnet18", weights=str(tmp_path / "cut.pth"))
    (tmp_path / "cut.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match="cut.safetensors is not a readable safetensors file"):
        keras_cnn.build("resnet18", weights=str(tmp_path / "cut.safetensors"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="expected a .safetensors, .pth, .pt, .th or .bin file"):
        keras_cnn.build("resnet18", weights=str(tmp_path / "notes.txt"))


def _numpy_state(resnet18_state):
    return {k: v.numpy() for k, v in resnet18_state[1].items()}


def test_missing_unexpected_and_misshapen_keys_are_listed_and_nothing_is_loaded(resnet18_state):
    model = keras_cnn.build("resnet18", input_shape=(64, 64, 3))
    key_map = keras_cnn.get_spec("resnet18").key_maps["torchvision"]
    before = [np.array(w) for w in model.weights]
    state = _numpy_state(resnet18_state)
    del state["layer2.0.conv1.weight"]
    state["layer9.0.extra.weight"] = np.zeros(3, "float32")
    state["layer3.1.bn2.running_var"] = np.ones(7, "float32")
    with pytest.raises(ValueError) as error:
        weights.transfer(model, state, key_map, source="test.pth")
    message = str(error.value)
    assert "missing keys" in message and "layer2.0.conv1.weight" in message
    assert "unexpected keys" in message and "layer9.0.extra.weight" in message
    assert "shape mismatches" in message and "layer3.1.bn2.running_var" in message
    assert "Nothing was loaded" in message
    assert all(np.array_equal(b, np.array(w)) for b, w in zip(before, model.weights)), "loaded partway"


# --------------------------------------------------------------------------- heads, features, channels
def test_another_number_of_classes_loads_the_backbone_and_starts_the_head_fresh(resnet18_pth, caplog):
    full = keras_cnn.build("resnet18", weights=str(resnet18_pth), input_shape=(64, 64, 3))
    with caplog.at_level(logging.WARNING, logger="keras_cnn"):
        tuned = keras_cnn.build("resnet18", weights=str(resnet18_pth), input_shape=(64, 64, 3), num_classes=10)
    assert [r.getMessage() for r in caplog.records if "starts fresh" in r.getMessage()], caplog.text
    assert tuned.get_layer("predictions").kernel.shape == (512, 10)
    for layer in ("stem_conv", "stage4_block2_conv2_bn"):
        for a, b in zip(full.get_layer(layer).weights, tuned.get_layer(layer).weights):
            assert np.array_equal(np.array(a), np.array(b)), layer


def test_include_top_false_gives_the_reference_features(resnet18_state, resnet18_pth):
    reference, _ = resnet18_state
    images = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    model = keras_cnn.build("resnet18", weights=str(resnet18_pth), input_shape=(64, 64, 3), include_top=False,
                            pooling="avg")
    features = np.asarray(model(images, training=False))
    trunk = torch.nn.Sequential(*list(reference.children())[:-1])  # without fc
    normalized = (images - np.array([0.485, 0.456, 0.406], "float32")) / np.array([0.229, 0.224, 0.225], "float32")
    with torch.no_grad():
        expected = trunk(torch.from_numpy(normalized.transpose(0, 3, 1, 2))).flatten(1).numpy()
    assert np.abs(features - expected).max() <= 1e-4 * np.abs(expected).max()


def test_a_gray_model_sums_the_first_kernel_over_rgb(resnet18_state, resnet18_pth):
    gray = keras_cnn.build("resnet18", weights=str(resnet18_pth), input_shape=(64, 64, 1))
    expected = resnet18_state[1]["conv1.weight"].numpy().sum(axis=1, keepdims=True).transpose(2, 3, 1, 0)
    assert np.allclose(np.array(gray.get_layer("stem_conv").kernel), expected, atol=1e-6)
    normalization = gray.get_layer("checkpoint_normalization")
    assert normalization.mean == pytest.approx([np.mean([0.485, 0.456, 0.406])])


def test_model_info_lists_the_checkpoints():
    info = keras_cnn.model_info("resnet50", measure=False)
    sources = [c["source"] for c in info["checkpoints"]]
    assert sources == ["torchvision:IMAGENET1K_V2", "torchvision:IMAGENET1K_V1"]
    first = info["checkpoints"][0]
    assert first["url"] == "https://download.pytorch.org/models/resnet50-11ad3fa6.pth" and first["downloads"]
    assert (first["crop_size"], first["resize_size"], first["top1"], first["dataset"]) == (224, 232, 80.858, "imagenet")
    assert keras_cnn.model_info("lenet5", measure=False)["checkpoints"] == []
