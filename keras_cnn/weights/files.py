"""Reading a checkpoint file into ``{key: numpy array}`` without unpickling arbitrary objects.

* ``.safetensors``: the ``safetensors`` package's NumPy API (no torch needed).
* ``.pth`` / ``.pt`` / ``.th`` / ``.bin``: ``torch.load(..., map_location="cpu", weights_only=True)``,
  which refuses any pickled object other than tensors and plain containers (torch is the optional
  ``[torch]`` extra). A training script's checkpoint (``{"state_dict": ..., "best_prec1": ...}``) is
  unwrapped, DataParallel's ``module.`` prefix dropped, and tensors saved on a GPU land on the CPU.
* A folder as timm and Hugging Face publish it: ``config.json`` plus ``model.safetensors`` (or
  ``pytorch_model.bin``); its ``pretrained_cfg`` gives the normalization.

Example:
    >>> from keras_cnn.weights.files import read_state_dict
    >>> state = read_state_dict("resnet18.safetensors")  # doctest: +SKIP
    >>> state["fc.weight"].shape  # doctest: +SKIP
    (1000, 512)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: torch.save files; ``.th`` is torch.hub's older name (akamaster/pytorch_resnet_cifar10's ``resnet20-12fca82f.th``)
TORCH_SUFFIXES = (".pth", ".pt", ".th", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
FOLDER_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
#: keys under which training scripts nest the state_dict inside a checkpoint
WRAPPER_KEYS = ("state_dict", "model", "model_state", "module")


def checkpoint_file(path) -> Path:
    """The weights file of ``path`` (itself, or the weights file inside a timm / Hugging Face folder)."""
    path = Path(path)
    if path.is_dir():
        for name in FOLDER_FILES:
            if (path / name).is_file():
                return path / name
        raise ValueError(f"{path} holds none of {list(FOLDER_FILES)}: not a timm / Hugging Face checkpoint folder")
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    if path.suffix not in (*TORCH_SUFFIXES, SAFETENSORS_SUFFIX):
        raise ValueError(f"checkpoint {str(path)!r}: expected a .safetensors, .pth, .pt, .th or .bin file or a folder "
                         f"with config.json and model.safetensors")
    return path


def folder_preprocessing(path) -> dict:
    """``mean``/``std``/``crop_size``/``interpolation`` from a timm folder's config.json, where given."""
    config_file = Path(path) / "config.json"
    if not Path(path).is_dir() or not config_file.is_file():
        return {}
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{config_file}: not a readable JSON file ({error})") from error
    cfg = config.get("pretrained_cfg", config)
    found = {}
    if "mean" in cfg and "std" in cfg:
        found.update(mean=tuple(cfg["mean"]), std=tuple(cfg["std"]))
    if "input_size" in cfg:
        found["crop_size"] = int(cfg["input_size"][-1])
    if "interpolation" in cfg:
        found["interpolation"] = str(cfg["interpolation"])
    if "num_classes" in cfg or "num_classes" in config:
        found["num_classes"] = int(cfg.get("num_classes", config.get("num_classes")))
    return found


def read_state_dict(path) -> dict[str, np.ndarray]:
    """``{key: float32 / int array}`` of the checkpoint at ``path``; ValueError naming the file when it
    is not a state_dict of tensors."""
    file = checkpoint_file(path)
    if file.suffix == SAFETENSORS_SUFFIX:
        return _read_safetensors(file)
    return _read_torch(file)


def _read_safetensors(file: Path) -> dict:
    try:
        from safetensors.numpy import load_file
    except ImportError as error:  # a dependency of keras_cnn; only a broken install lacks it
        raise ValueError(f"reading {file} needs the safetensors package: pip install safetensors") from error
    try:
        return {key: _as_numpy(value) for key, value in load_file(str(file)).items()}
    except Exception as error:  # safetensors raises its own SafetensorError on a damaged header
        raise ValueError(f"{file} is not a readable safetensors file ({type(error).__name__}: {error})") from error


def _read_torch(file: Path) -> dict:
    try:
        import torch
    except ImportError as error:
        raise ValueError(f"reading {file} needs PyTorch: pip install 'keras_cnn[torch]', or convert the file to "
                         ".safetensors") from error
    try:
        state = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError for foreign objects; RuntimeError/EOFError for damaged files
        refused = "weights_only" in str(error) or "Unsupported global" in str(error)
        if refused or "pickle" in type(error).__name__.lower():
            raise ValueError(f"{file} was refused: it holds pickled objects other than tensors, and keras_cnn never "
                             f"unpickles arbitrary objects (torch.load weights_only=True: "
                             f"{str(error).splitlines()[0][:300]})") from error
        raise ValueError(f"{file} is not a readable PyTorch checkpoint ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:300]})") from error
    for key in WRAPPER_KEYS:  # {"state_dict": {...}, "epoch": ...} as training scripts save it
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{file} holds a {type(state).__name__}, not a state_dict (a dict of tensors)")
    arrays = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{file}: entry {key!r} is a {type(value).__name__}, not a tensor; not a state_dict")
        if value.is_floating_point():
            value = value.float()
        arrays[key.removeprefix("module.")] = value.detach().cpu().numpy()
    return arrays


def _as_numpy(value) -> np.ndarray:
    array = np.asarray(value)
    return array.astype("float32") if array.dtype.kind == "f" else array
