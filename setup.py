"""keras_cnn: the classic CNN line, faithful, in Keras 3."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "keras_cnn" / "__init__.py").read_text()).group(1)

setup(
    name="keras_cnn",
    version=VERSION,
    description="Every network of the classic CNN line, faithful to its paper, in Keras 3.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_cnn", "keras_cnn.*"]),
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<4",
        "tensorflow-datasets>=4.9",
        # tensorflow-datasets 4.9.10 imports importlib_resources when it prepares a data set whose builder
        # lives in a package (tfds' own mnist, cifar10, ..., a user's builder module) and declares it only
        # for Python < 3.9: without it download_and_prepare fails with "No module named 'importlib_resources'".
        # Found by preparing a GeneratorBasedBuilder in a fresh venv (tests/test_cli_e2e.py does it); its
        # other imports on that path (etils[epath,epy,...], fsspec, zipp, ...) are declared by tfds.
        "importlib_resources>=5",
        "keras-tuner>=1.4.8",
        "tensorboard>=2.21",
        "ai-edge-litert>=2.0",
        "scikit-learn>=1.3",
        "matplotlib>=3.7",
        "numpy>=1.26",
        "pillow>=10",  # image files: keras_cnn.data (folders), keras_cnn.training.evaluate (predict)
        "safetensors>=0.4",  # checkpoints in .safetensors / timm folders (NumPy API, no torch needed)
    ],
    package_data={"keras_cnn": ["weights/imagenet_classes.txt", "deploy/calibration_photos/*.jpg",
                              "deploy/calibration_photos/README.md"]},
    extras_require={
        # reading PyTorch .pth/.pt/.bin state_dicts (torch.load with weights_only=True)
        "torch": ["torch>=2.1"],
        # The reference libraries for the weight tests (torchvision's and timm's own models). torch 2.13.0 and
        # the torchvision built for it: where pip finds torch's CPU build (0.9 GB installed, against 5.5 GB for
        # a CUDA build with its libraries), PyPI's torchvision, a CUDA build, cannot load its compiled ops
        # beside it; the tests use only torchvision's model definitions (pure Python), and tests/conftest.py
        # skips the module that registers those ops (see there).
        "test": ["pytest>=8", "pytest-xdist>=3.5", "jax>=0.4.30", "ruff>=0.17,<0.18", "import-linter>=2.1,<3",
                 "torch==2.13.0", "torchvision==0.28.0", "timm>=1.0.20,<2"],
    },
    entry_points={"console_scripts": ["keras-cnn=keras_cnn.cli:run"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
