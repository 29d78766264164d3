"""Every variant with a torchvision or timm checkpoint gives the reference's logits from its weights.

Parameter counts cannot see padding, pooling, slopes, flattening order or a transposed kernel; the
reference's own weights giving the reference's own outputs can. For every pair below, with no
network and no real checkpoint:

1. the reference model is built by torchvision or timm with random weights and random BatchNorm
   statistics and affine parameters (a BN left at its identity initialization would hide a
   swapped mean and variance). In the timm ports of the TF-slim nets (``HE_NORMAL``) PyTorch's
   default init fades to a near-constant output, so their convs and linears are re-drawn
   He-normal and the logits depend on the input; elsewhere He-normal makes the nets chaotic
   (SE-ResNet-50's float32 rounding grows from 2e-7 at the stem to 1e-2 at the logits), so the
   libraries' own init stays;
2. its state_dict is saved in the format its library publishes, ``.pth`` (``torch.save``) for
   torchvision and ``.safetensors`` for timm's hub files; the first pair of each family is saved and
   read in both (the reader is the same for every net; reading both for all 51 pairs doubled their
   builds, ~250 s of CI);
3. both files are loaded through ``keras_cnn.build(name, weights=path)``, which reads them, maps
   every key through the family's key map and puts the checkpoint's normalization in the model;
4. on the same [0, 1] images (the reference gets them normalized), the logits must agree within
   ``max |diff| <= 2e-5 * max |logit|`` in float32. The issue's bound is 1e-4; every pair measures
   about 1e-6, and a border-padding bug (CSPNet's stem pool padded with zeros instead of -inf)
   measured 6e-5, which 1e-4 let through;
5. where timm has the network, the feature levels (``keras_cnn.build(name, features=True)``'s maps,
   taken from the loaded model) equal the maps of timm's ``feature_info`` modules within
   ``max |diff| <= 1e-4 * max |map|``: hooked on the timm reference itself, or, for a torchvision
   reference, on the torchvision modules that are the same maps as timm's twin's
   (:data:`TORCHVISION_FEATURE_MODULES`). ``timm.create_model(..., features_only=True)`` returns
   exactly these modules' outputs.

Each row is ``(our name, "torchvision:<builder>" or "timm:<model name>", input size, build
options)``; the input size is small where the net allows it, to keep CI fast.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the test extra installs torch; without it these pairs cannot run")
torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")
safetensors_torch = pytest.importorskip("safetensors.torch")

RELATIVE_TOLERANCE = 2e-5
#: references whose default init gives a near-constant output (see step 1)
HE_NORMAL = ("inception_v4", "inception_resnet_v2", "legacy_xception")

# --------------------------------------------------------------------------- the pairs, one block per family
RESNET_PAIRS = [
    ("resnet18", "torchvision:resnet18", 64, {}),
    ("resnet34", "torchvision:resnet34", 64, {}),
    ("resnet50", "torchvision:resnet50", 64, {}),
    ("resnet101", "torchvision:resnet101", 64, {}),
    ("resnet152", "torchvision:resnet152", 64, {}),
    ("resnext50_32x4d", "torchvision:resnext50_32x4d", 64, {}),
    ("resnext101_32x8d", "torchvision:resnext101_32x8d", 64, {}),
    ("resnext101_64x4d", "torchvision:resnext101_64x4d", 64, {}),
]
# VGG at 32 pools a 1x1 map up to 7x7, a map the same at every position; vgg11 at 64 (2x2 -> 7x7, uneven bins)
# and alexnet_owt at 224 (its own 6x6) have maps that vary, so they check the first Dense's NCHW -> NHWC row
# order in full (an H/W swap passes at 1x1). SqueezeNet's ceil-mode pools at 64.
CLASSIC_PAIRS = [
    ("vgg11", "torchvision:vgg11", 64, {}),
    *[(name, f"torchvision:{name}", 32, {}) for name in
      ("vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")],
    ("alexnet_owt", "torchvision:alexnet", 224, {}),
    ("squeezenet1_0", "torchvision:squeezenet1_0", 64, {}),
    ("squeezenet1_1", "torchvision:squeezenet1_1", 64, {}),
]
DENSENET_PAIRS = [(name, f"torchvision:{name}", 64, {}) for name in
                  ("densenet121", "densenet161", "densenet169", "densenet201")]
# torchvision's googlenet / inception_v3 files run with transform_input=True, i.e. (x - 0.5) / 0.5: our rows declare
# that normalization, and the reference here (weights=None: transform_input=False) is fed the images normalized by
# our model's own normalization layer, so the pair holds either way. googlenet's checkpoint is the
# torchvision_style net (a file given by path needs the option). Inception v3's smallest input is 75.
INCEPTION_PAIRS = [
    ("googlenet", "torchvision:googlenet", 64, {"torchvision_style": True}),
    ("inception_v3", "torchvision:inception_v3", 75, {}),
]
SE_PAIRS = [  # Cadene's SENets as timm's legacy_se* build them
    ("se_resnet50", "timm:legacy_seresnet50", 64, {}),
    ("se_resnext50_32x4d", "timm:legacy_seresnext50_32x4d", 64, {}),
]
MOBILENET_PAIRS = [(name, f"torchvision:{name}", 64, {})
                   for name in ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large")] + [
    ("mobilenet_v1", "timm:mobilenetv1_100", 64, {})]  # timm's efficientnet.py: ReLU6, PyTorch's padding
SHUFFLENET_PAIRS = [(f"shufflenet_v2_{width}", f"torchvision:shufflenet_v2_{width}", 64, {})
                    for width in ("x0_5", "x1_0", "x1_5", "x2_0")]
CSP_DARKNET_PAIRS = [  # timm's cspnet.py; its darknet53 was trained with LeakyReLU(0.01)
    ("cspresnet50", "timm:cspresnet50", 64, {}),
    ("cspresnext50", "timm:cspresnext50", 64, {}),
    ("cspdarknet53", "timm:cspdarknet53", 64, {}),
    ("darknet53", "timm:darknet53", 64, {"leaky_slope": 0.01}),
]
# timm's train-time RepVGG (no b1g2 in timm); the B nets from b1 on are big: their smallest input, 32.
REPVGG_PAIRS = [(f"repvgg_{key}", f"timm:repvgg_{key}", 64, {}) for key in ("a0", "a1", "a2", "b0")] + [
    (f"repvgg_{key}", f"timm:repvgg_{key}", 32, {}) for key in ("b1", "b1g4", "b2", "b2g4", "b3", "b3g4")]
# timm's Cadene ports of the TF-slim nets at their smallest input (75). Xception ("extreme Inception"): timm's
# legacy_xception runs PyTorch's BN epsilon and symmetric pool padding (the checkpoint row's options); at 91 two of its
# pooled maps have even sizes, where that padding differs from TensorFlow's "same" (at 71 every one is odd).
TIMM_INCEPTION_PAIRS = [
    ("inception_v4", "timm:inception_v4", 75, {}),
    ("inception_resnet_v2", "timm:inception_resnet_v2", 75, {}),
    ("xception", "timm:legacy_xception", 91, {"bn_epsilon": 1e-5, "pool_padding": "symmetric"}),
]
# timm's resnetv2 (pre-activation); its stem pool pads a raw conv output with -inf (resnetv2_152: no weights, same map)
RESNET_V2_PAIRS = [(f"resnet{depth}_v2", f"timm:resnetv2_{depth}", 64, {}) for depth in (50, 101, 152)]
# The paper's CIFAR ResNets as akamaster/pytorch_resnet_cifar10 builds and saves them (:class:`CifarResNet` below:
# its structure and module names, option A's zeros split evenly on both sides), at their own 32x32; its option B
# (a 1x1 conv-BN projection, ``shortcut.0`` / ``shortcut.1``) on resnet20. resnet1202 (4,210 Keras layers, 40-50 s
# to build here) is held to its parameter count only (tests/test_models.py): its blocks are resnet110's.
CIFAR_PAIRS = [(f"resnet{depth}", f"akamaster:resnet{depth}", 32, {}) for depth in (20, 32, 44, 56, 110)] + [
    ("resnet20", "akamaster:resnet20-B", 32, {"shortcut": "B"})]
# timm's VoVNet-v2 (CenterMask: identity mapping, eSE with a hard-sigmoid gate; 19b_dw: depthwise-separable convs)
VOVNET_PAIRS = [(name, f"timm:{name}", 64, {}) for name in ("ese_vovnet19b_dw", "ese_vovnet39b", "ese_vovnet57b")]
# (other families add their blocks here)

PAIRS = [*RESNET_PAIRS, *SE_PAIRS, *CSP_DARKNET_PAIRS, *REPVGG_PAIRS, *CLASSIC_PAIRS, *DENSENET_PAIRS, *INCEPTION_PAIRS,
         *MOBILENET_PAIRS, *SHUFFLENET_PAIRS, *TIMM_INCEPTION_PAIRS, *RESNET_V2_PAIRS, *CIFAR_PAIRS, *VOVNET_PAIRS]
#: one test id a pair: our name, and the reference's where one name has two pairs (resnet20 with options A and B)
PAIR_IDS = [name if [row[0] for row in PAIRS].count(name) == 1 else f"{name}-{reference.split(':', 1)[1]}"
            for name, reference, *_ in PAIRS]


# The torchvision modules whose outputs are the maps of timm's feature_info for the same network (timm: resnet's
# act1/layer1-4, densenet's norm0 (BN-ReLU)/denseblock1-3/norm5 (BN-ReLU; torchvision applies that ReLU in forward),
# mobilenetv2_100 / mobilenetv3_*_100's blocks at each stage end, VGG's and Inception v3's own module names).
RESNET_MODULES = {"P1": "relu", "P2": "layer1", "P3": "layer2", "P4": "layer3", "P5": "layer4"}
DENSENET_MODULES = {"P1": "features.relu0", "P2": "features.denseblock1", "P3": "features.denseblock2",
                    "P4": "features.denseblock3", "P5": "features.norm5+relu"}
TORCHVISION_FEATURE_MODULES = {
    **{name: RESNET_MODULES for name, *_ in RESNET_PAIRS},
    **{name: DENSENET_MODULES for name, *_ in DENSENET_PAIRS},
    "mobilenet_v2": {"P1": "features.1", "P2": "features.3", "P3": "features.6", "P4": "features.13",
                     "P5": "features.17"},
    "mobilenet_v3_small": {"P1": "features.0", "P2": "features.1", "P3": "features.3", "P4": "features.8",
                           "P5": "features.12"},
    "mobilenet_v3_large": {"P1": "features.1", "P2": "features.3", "P3": "features.6", "P4": "features.12",
                           "P5": "features.16"},
    **{name: "timm" for name, *_ in CLASSIC_PAIRS if name.startswith("vgg")},  # timm's vgg: torchvision's indices
    "inception_v3": "timm",  # timm's inception_v3: torchvision's module names
}
#: akamaster's nets (no timm twin): each stage's output, at strides 1, 2 and 4 (our P0, P1, P2)
CIFAR_MODULES = {"P0": "layer1", "P1": "layer2", "P2": "layer3"}
FEATURE_TOLERANCE = 1e-4


def reference_feature_modules(name, reference):
    """``{level: reference module}`` for the pair, or None where timm has no such network."""
    library, _, builder = reference.partition(":")
    if library == "akamaster":
        return CIFAR_MODULES
    modules = TORCHVISION_FEATURE_MODULES.get(name) if library == "torchvision" else "timm"
    if modules != "timm":
        return modules
    info = timm.create_model(builder, pretrained=False).feature_info
    return {f"P{int(np.log2(f['reduction']))}": f["module"] for f in info}


def hook_features(model, modules):
    """Forward hooks storing each module's output (by level) in the returned dict as the model runs."""
    maps, hooks = {}, []
    for level, module in modules.items():
        module, _, then = module.partition("+")

        def store(_module, _inputs, output, level=level, relu=then == "relu"):
            maps[level] = (torch.relu(output) if relu else output).detach().clone().numpy()

        hooks.append(model.get_submodule(module).register_forward_hook(store))
    return maps, hooks


def check_features(name, ours, maps, images):
    """Our feature levels (from the model that gave the logits) against the reference's hooked maps."""
    from keras_cnn.features import feature_model
    from keras_cnn.registry import levels_of

    levels = [level for level in levels_of(name) if level["level"] in maps]
    assert [level["level"] for level in levels] == sorted(maps, key=lambda level: int(level[1:])), (name, levels, maps)
    got = feature_model(ours, levels, name)(images, training=False)
    for level in levels:
        expected = maps[level["level"]].transpose(0, 2, 3, 1)
        value = np.asarray(got[level["level"]])
        assert value.shape == expected.shape, (name, level, value.shape, expected.shape)
        diff, scale = float(np.abs(value - expected).max()), float(np.abs(expected).max())
        assert diff <= FEATURE_TOLERANCE * scale, (
            f"{name} {level['level']} ({level['layer']}): max |diff| {diff:.3g} > {FEATURE_TOLERANCE} x {scale:.3g}")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The references run on one thread. With torch's default (one thread per core) its OpenMP
    workers spin between ops while TensorFlow and the other xdist worker want the same two cores:
    measured on the 2-core machine, densenet161's reference forward took 8-13 s on 2 threads and
    0.2-0.4 s on one, and its whole pair 46 s -> 17 s (resnext101_32x8d 39 s -> 19 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class CifarBlock(torch.nn.Module):
    """akamaster/pytorch_resnet_cifar10's ``BasicBlock``, as its files name the modules: ``conv1``/``bn1``,
    ``conv2``/``bn2``, and where the shape changes a ``shortcut``: option A subsamples and pads the new channels
    with zeros, half of them before the input's and half after (no parameters), option B is a 1x1 conv-BN
    (``shortcut.0``, ``shortcut.1``)."""

    def __init__(self, channels, width, stride, option):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(channels, width, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(width)
        self.conv2 = torch.nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(width)
        self.pad = (width - channels) // 2 if (stride != 1 or channels != width) and option == "A" else 0
        self.shortcut = torch.nn.Sequential()
        if (stride != 1 or channels != width) and option == "B":
            self.shortcut = torch.nn.Sequential(torch.nn.Conv2d(channels, width, 1, stride, bias=False),
                                                torch.nn.BatchNorm2d(width))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        if self.pad:
            identity = torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        else:
            identity = self.shortcut(x)
        return torch.relu(y + identity)


class CifarResNet(torch.nn.Module):
    """The paper's CIFAR-10 ResNet of ``depth`` as akamaster/pytorch_resnet_cifar10's ``resnet.py`` builds it
    (``conv1``/``bn1``, ``layer1``-``layer3`` of (depth - 2) / 6 blocks at 16, 32, 64 channels, global average
    pool, ``linear``), written here from that structure."""

    def __init__(self, depth, option="A", num_classes=10):
        super().__init__()
        blocks = (depth - 2) // 6
        self.conv1 = torch.nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(16)
        channels = 16
        for stage, width in enumerate((16, 32, 64), start=1):
            stage_blocks = []
            for index in range(blocks):
                stage_blocks.append(CifarBlock(channels, width, 2 if stage > 1 and index == 0 else 1, option))
                channels = width
            setattr(self, f"layer{stage}", torch.nn.Sequential(*stage_blocks))
        self.linear = torch.nn.Linear(64, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(x.mean(dim=(2, 3)))


def reference_model(reference: str):
    """The reference network with random weights and random BatchNorm statistics, in eval mode."""
    library, _, builder = reference.partition(":")
    torch.manual_seed(0)
    if library == "torchvision":
        model = torchvision.models.get_model(builder, weights=None)
    elif library == "akamaster":  # "resnet20" or "resnet20-B"
        depth, _, option = builder.removeprefix("resnet").partition("-")
        model = CifarResNet(int(depth), option or "A")
    else:
        model = timm.create_model(builder, pretrained=False)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if builder in HE_NORMAL and isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = module.weight[0].numel()  # in/groups * kh * kw, or in
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.1, generator=generator)
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
                module.running_mean.normal_(0.0, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
                if module.affine:
                    module.weight.uniform_(0.5, 1.5, generator=generator)
                    module.bias.normal_(0.0, 0.2, generator=generator)
    return model.eval()


def reference_logits(model, images: np.ndarray, mean, std) -> np.ndarray:
    normalized = (images - np.asarray(mean, "float32")) / np.asarray(std, "float32")
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(normalized.transpose(0, 3, 1, 2))))
    return (out[0] if isinstance(out, (tuple, list)) else getattr(out, "logits", out)).numpy()


#: the first pair of each family: read from both file formats
BOTH_FORMATS = {block[0][0] for block in (RESNET_PAIRS, SE_PAIRS, CSP_DARKNET_PAIRS, REPVGG_PAIRS, CLASSIC_PAIRS,
                                          DENSENET_PAIRS, INCEPTION_PAIRS, MOBILENET_PAIRS, SHUFFLENET_PAIRS,
                                          TIMM_INCEPTION_PAIRS, RESNET_V2_PAIRS, VOVNET_PAIRS)}


def file_formats(name, reference):
    """The suffixes a pair is saved and read in: its library's published format, or both (:data:`BOTH_FORMATS`)."""
    if reference.startswith("akamaster:"):
        return (".th",)
    if name in BOTH_FORMATS:
        return (".pth", ".safetensors")
    return (".pth",) if reference.startswith("torchvision:") else (".safetensors",)


def save_state_dict(model, folder, formats=(".pth", ".safetensors")):
    """The reference's state_dict as ``.pth`` and/or ``.safetensors`` (safetensors refuses tensors that share
    storage: those are saved as contiguous copies; the others as they are, VGG's 550 MB copied for nothing), or
    as ``.th`` the way akamaster/pytorch_resnet_cifar10's trainer saves it: ``{"state_dict": ..., "best_prec1":
    ...}`` from a ``DataParallel`` model, every key prefixed ``module.``."""
    state = model.state_dict()
    paths = []
    if ".th" in formats:
        torch.save({"state_dict": {f"module.{key}": value for key, value in state.items()}, "best_prec1": 91.0},
                   folder / "reference.th")
        paths.append(folder / "reference.th")
    if ".pth" in formats:
        torch.save(state, folder / "reference.pth")
        paths.append(folder / "reference.pth")
    if ".safetensors" in formats:
        storages = Counter(value.untyped_storage().data_ptr() for value in state.values())
        safetensors_torch.save_file(
            {key: value.contiguous().clone() if storages[value.untyped_storage().data_ptr()] > 1 else value.contiguous()
             for key, value in state.items()}, str(folder / "reference.safetensors"))
        paths.append(folder / "reference.safetensors")
    return paths


def check_pair(name, reference, size, options, folder):
    """Build both sides and compare logits for each saved file (:func:`file_formats`); returns the report."""
    import keras_cnn

    model = reference_model(reference)
    files = save_state_dict(model, folder, file_formats(name, reference))
    images = np.random.default_rng(0).uniform(0, 1, (2, size, size, 3)).astype("float32")
    modules = reference_feature_modules(name, reference)
    maps, hooks = hook_features(model, modules) if modules else ({}, [])
    report, references = {}, {}  # the reference's logits per normalization (both files: the same one)
    for path in files:
        ours = keras_cnn.build(name, weights=str(path), input_shape=(size, size, 3), classifier_activation=None,
                               **options)
        normalization = ours.get_layer("checkpoint_normalization")
        key = (tuple(np.ravel(normalization.mean).tolist()), tuple(np.ravel(normalization.std).tolist()))
        if key not in references:
            references[key] = reference_logits(model, images, normalization.mean, normalization.std)
        expected = references[key]
        got = np.asarray(ours(images, training=False))
        assert got.shape == expected.shape, (path.name, got.shape, expected.shape)
        scale = float(np.abs(expected).max())
        diff = float(np.abs(got - expected).max())
        report[path.suffix] = (diff, scale)
        assert diff <= RELATIVE_TOLERANCE * scale, (
            f"{name} from {reference} ({path.name}): max |diff| {diff:.3g} > {RELATIVE_TOLERANCE} x max |logit| "
            f"{scale:.3g}")
        if maps and path == files[0]:  # the hooks ran in the reference forward above
            check_features(name, ours, maps, images)
            report["features"] = sorted(maps)
        del ours
    for hook in hooks:
        hook.remove()
    for path in files:  # up to 1.1 GB a pair (VGG): do not keep them for the whole session
        path.unlink()
    return report


@pytest.mark.parametrize("name,reference,size,options", PAIRS, ids=PAIR_IDS)
def test_reference_weights_give_reference_logits(name, reference, size, options, tmp_path):
    check_pair(name, reference, size, options, tmp_path)


# --------------------------------------------------------------------------- DenseNet's old key names, aux heads
def assert_logits_match(what, got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    diff, scale = float(np.abs(got - expected).max()), float(np.abs(expected).max())
    assert diff <= RELATIVE_TOLERANCE * scale, f"{what}: max |diff| {diff:.3g} > {RELATIVE_TOLERANCE} x {scale:.3g}"


def test_densenet_reads_torchvision_published_key_names(tmp_path):
    """torchvision's published DenseNet files say ``denselayer1.norm.1.weight`` for ``norm1``: the key map's
    aliases (torchvision's own rename) read them."""
    import re

    import keras_cnn

    model = reference_model("torchvision:densenet121")
    old = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key): value
           for key, value in model.state_dict().items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old and "features.norm0.weight" in old
    torch.save(old, tmp_path / "published_names.pth")
    ours = keras_cnn.build("densenet121", weights=str(tmp_path / "published_names.pth"), input_shape=(64, 64, 3),
                           classifier_activation=None)
    images = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    normalization = ours.get_layer("checkpoint_normalization")
    assert_logits_match("densenet121", ours(images, training=False),
                        reference_logits(model, images, normalization.mean, normalization.std))


# our aux output -> (reference module whose output feeds the aux head, the reference aux head)
AUX_PAIRS = [
    ("googlenet", "torchvision:googlenet", 96, {"torchvision_style": True},
     {"aux1": ("inception4a", "aux1"), "aux2": ("inception4d", "aux2")}),
    ("inception_v3", "torchvision:inception_v3", 299, {}, {"aux1": ("Mixed_6e", "AuxLogits")}),
]


@pytest.mark.parametrize("name,reference,size,options,heads", AUX_PAIRS, ids=[row[0] for row in AUX_PAIRS])
def test_aux_heads_load_from_the_checkpoint(name, reference, size, options, heads, tmp_path):
    """With ``aux_logits=True`` the checkpoint's aux heads load too (without it the key map ignores them, as the
    pairs above check); torchvision runs its aux heads only in training, so they are applied here to the
    features they read."""
    import keras_cnn

    model = reference_model(reference)
    torch.save(model.state_dict(), tmp_path / "reference.pth")
    ours = keras_cnn.build(name, weights=str(tmp_path / "reference.pth"), input_shape=(size, size, 3),
                           classifier_activation=None, aux_logits=True, **options)
    images = np.random.default_rng(0).uniform(0, 1, (2, size, size, 3)).astype("float32")
    normalization = ours.get_layer("checkpoint_normalization")
    features = {}
    hooks = [getattr(model, source).register_forward_hook(lambda _m, _i, out, key=key: features.update({key: out}))
             for key, (source, _) in heads.items()]
    expected = {"predictions": reference_logits(model, images, normalization.mean, normalization.std)}
    for hook in hooks:
        hook.remove()
    with torch.no_grad():
        expected.update({key: getattr(model, head)(features[key]).numpy() for key, (_, head) in heads.items()})
    got = ours(images, training=False)
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert_logits_match(f"{name} {key}", got[key], expected[key])


def test_converted_mobilenet_v3_large_exports_to_tflite_like_keras(tmp_path):
    """A MobileNetV3-Large from a torchvision state_dict, exported to float32 TFLite at 224x224 (its
    checkpoint normalization inside the file), gives the Keras logits within 1e-4, and the export
    report records the checkpoint's input conventions."""
    import keras_cnn
    from keras_cnn.deploy.export import export_tflite, run_tflite

    [pth] = save_state_dict(reference_model("torchvision:mobilenet_v3_large"), tmp_path, (".pth",))
    model = keras_cnn.build("mobilenet_v3_large", weights=str(pth), classifier_activation=None)
    images = np.random.default_rng(0).uniform(0, 1, (4, 224, 224, 3)).astype("float32")
    report = export_tflite(model, tmp_path / "mobilenet_v3_large.tflite", verify_data=images)
    logits = np.asarray(model(images, training=False))
    got = run_tflite(tmp_path / "mobilenet_v3_large.tflite", images)
    assert np.abs(got - logits).max() <= 1e-4 and report["max_abs_diff_vs_keras"] <= 1e-4, report
    assert report["input"]["checkpoint"]["crop_size"] == 224 and report["input"]["checkpoint"]["mean"][0] == 0.485
    assert report["xnnpack_delegated_fraction"] == 1.0, report["ops_not_delegated"]


def test_features_model_loads_weights(tmp_path):
    """``build(name, features=True, weights=...)``: the backbone alone reads the checkpoint (its classifier keys
    are left out) and gives the reference's maps at every level, with the checkpoint's normalization first."""
    import keras_cnn

    model = reference_model("torchvision:resnet18")
    torch.save(model.state_dict(), tmp_path / "resnet18.pth")
    backbone = keras_cnn.build("resnet18", features=True, weights=str(tmp_path / "resnet18.pth"),
                               input_shape=(64, 64, 3))
    images = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    normalization = backbone.get_layer("checkpoint_normalization")
    maps, hooks = hook_features(model, RESNET_MODULES)
    reference_logits(model, images, normalization.mean, normalization.std)
    for hook in hooks:
        hook.remove()
    got = backbone(images, training=False)
    assert list(got) == ["P1", "P2", "P3", "P4", "P5"]
    for level, expected in maps.items():
        assert_logits_match(f"resnet18 {level}", got[level], expected.transpose(0, 2, 3, 1))
