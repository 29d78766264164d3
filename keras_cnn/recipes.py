"""Per-family training defaults for :func:`keras_cnn.train` (every field can be overridden).

The papers trained on ImageNet for 90+ epochs with SGD; our users mostly fine-tune short runs on
small data sets, so the defaults are AdamW with a cosine schedule and one warm-up epoch, tuned per
family where the architecture needs it:

- nets without BatchNorm (AlexNet, ZFNet, plain VGG, NiN, SqueezeNet) diverge at AdamW 1e-3 and get
  smaller learning rates (SqueezeNet dies at 2e-3 on digits; 2e-4 trains);
- LeNet follows LeCun et al. (1998): 28x28 images padded (not scaled) into its 32x32 field, no
  augmentation; the faithful ``lenet5`` takes batches of 32 at AdamW 2e-3 with label smoothing
  0.1, the best of the recipes tried on Fashion-MNIST (0.8955-0.9007 in 10 epochs, benchmarks/README.md);
- the Inception line and the mobile line use label smoothing 0.1 (Szegedy et al. 2016, sec. 7;
  the MobileNet-v3 / ShuffleNet-v2 reference recipes), mobile nets a lighter weight decay.

Example:
    >>> from keras_cnn.recipes import recipe_for
    >>> recipe_for("squeezenet1_1").learning_rate
    0.0002
"""

from __future__ import annotations

import dataclasses
import fnmatch


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The fit recipe of one model name (see :func:`recipe_for`)."""

    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: int = 1
    label_smoothing: float = 0.0
    ema: float = 0.0
    resize: str = "bilinear"
    augment: bool = True
    batch_size: int = 64
    epochs: int = 10
    why: str = "default: AdamW + cosine, one warm-up epoch"


# First matching pattern wins: more specific patterns come first.
RECIPES: tuple[tuple[str, Recipe], ...] = (
    ("lenet5", Recipe(weight_decay=0.0, warmup_epochs=0, augment=False, resize="pad", batch_size=32,
                      learning_rate=2e-3, label_smoothing=0.1,
                      why="LeCun et al. 1998: small images padded into the input field, no augmentation; "
                          "batch 32, AdamW 2e-3, label smoothing 0.1 (best on Fashion-MNIST, benchmarks/README.md)")),
    ("lenet*", Recipe(weight_decay=0.0, warmup_epochs=0, augment=False, resize="pad",
                      why="LeCun et al. 1998: small images padded into the input field, no augmentation")),
    ("vgg*_bn", Recipe(why="VGG with BatchNorm trains at the default rate")),
    ("vgg*", Recipe(learning_rate=1e-4, why="no BatchNorm: a 10x smaller rate keeps it from diverging")),
    ("alexnet*", Recipe(learning_rate=1e-4, why="no BatchNorm: a 10x smaller rate keeps it from diverging")),
    ("zfnet", Recipe(learning_rate=1e-4, why="no BatchNorm: a 10x smaller rate keeps it from diverging")),
    ("nin", Recipe(learning_rate=3e-4, why="no BatchNorm: a smaller rate keeps it from diverging")),
    ("squeezenet*", Recipe(learning_rate=2e-4, why="no BatchNorm: dies at 2e-3, trains at 2e-4")),
    ("googlenet", Recipe(label_smoothing=0.1, why="Inception line: label smoothing 0.1 (Szegedy 2016)")),
    ("inception*", Recipe(label_smoothing=0.1, why="Inception line: label smoothing 0.1 (Szegedy 2016)")),
    ("mobilenet*", Recipe(learning_rate=2e-3, weight_decay=4e-5, label_smoothing=0.1,
                          why="mobile line: light weight decay, label smoothing 0.1")),
    ("shufflenet*", Recipe(learning_rate=2e-3, weight_decay=4e-5, label_smoothing=0.1,
                           why="mobile line: light weight decay, label smoothing 0.1")),
    ("*", Recipe()),
)


def recipe_for(name: str | None) -> Recipe:
    """The default recipe for a registry name (the generic default for ``None`` or a model object)."""
    for pattern, recipe in RECIPES:
        if name is not None and fnmatch.fnmatchcase(name, pattern):
            return recipe
    return RECIPES[-1][1]
