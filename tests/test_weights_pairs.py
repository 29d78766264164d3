"""Every variant with a torchvision or timm checkpoint gives the reference's logits from its weights.

Parameter counts cannot see padding, pooling, slopes, flattening order or a transposed kernel; the
reference's own weights giving the reference's own outputs can. For every pair below, with no
network and no real checkpoint:

1. the reference model is built by torchvision or timm with random weights and random BatchNorm
   statistics and affine parameters (a BN left at its identity initialization would hide a
   swapped mean and variance);
2. its state_dict is saved as ``.pth`` (``torch.save``) and as ``.safetensors``;
3. both files are loaded through ``keras_cnn.build(name, weights=path)``, which reads them, maps
   every key through the family's key map and puts the checkpoint's normalization in the model;
4. on the same [0, 1] images (the reference gets them normalized), the logits must agree within
   ``max |diff| <= 1e-4 * max |logit|`` in float32.

Each row is ``(our name, "torchvision:<builder>" or "timm:<model name>", input size, build
options)``; the input size is small where the net allows it, to keep CI fast.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the test extra installs torch; without it these pairs cannot run")
torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")
safetensors_torch = pytest.importorskip("safetensors.torch")

RELATIVE_TOLERANCE = 1e-4

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
# (other families add their blocks here)

PAIRS = [*RESNET_PAIRS]


def reference_model(reference: str):
    """The reference network with random weights and random BatchNorm statistics, in eval mode."""
    library, _, builder = reference.partition(":")
    torch.manual_seed(0)
    if library == "torchvision":
        model = torchvision.models.get_model(builder, weights=None)
    else:
        model = timm.create_model(builder, pretrained=False)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
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


def save_state_dict(model, folder):
    """The reference's state_dict as ``.pth`` and ``.safetensors`` (shared storage made contiguous copies)."""
    state = model.state_dict()
    torch.save(state, folder / "reference.pth")
    safetensors_torch.save_file({key: value.contiguous().clone() for key, value in state.items()},
                                str(folder / "reference.safetensors"))
    return folder / "reference.pth", folder / "reference.safetensors"


def check_pair(name, reference, size, options, folder):
    """Build both sides and compare logits for the .pth and the .safetensors file; returns the report."""
    import keras_cnn

    model = reference_model(reference)
    pth, safetensors_file = save_state_dict(model, folder)
    images = np.random.default_rng(0).uniform(0, 1, (2, size, size, 3)).astype("float32")
    report = {}
    for path in (pth, safetensors_file):
        ours = keras_cnn.build(name, weights=str(path), input_shape=(size, size, 3), classifier_activation=None,
                               **options)
        normalization = ours.get_layer("checkpoint_normalization")
        expected = reference_logits(model, images, normalization.mean, normalization.std)
        got = np.asarray(ours(images, training=False))
        assert got.shape == expected.shape, (path.name, got.shape, expected.shape)
        scale = float(np.abs(expected).max())
        diff = float(np.abs(got - expected).max())
        report[path.suffix] = (diff, scale)
        assert diff <= RELATIVE_TOLERANCE * scale, (
            f"{name} from {reference} ({path.name}): max |diff| {diff:.3g} > {RELATIVE_TOLERANCE} x max |logit| "
            f"{scale:.3g}")
        del ours
    return report


@pytest.mark.parametrize("name,reference,size,options", PAIRS, ids=[row[0] for row in PAIRS])
def test_reference_weights_give_reference_logits(name, reference, size, options, tmp_path):
    check_pair(name, reference, size, options, tmp_path)
