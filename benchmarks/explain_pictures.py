"""The README's pictures of ``keras-cnn explain`` (docs/images/explain/), each made by a real trained net.

- A real ImageNet-trained MobileNetV2 (torchvision layout, outside the repository: REAL's
  ``mobilenet_v2_imagenet_torchvision_layout.pth``) on ``chelsea.jpg``, the CC0 cat photo bundled with
  keras_cnn (keras_cnn/deploy/calibration_photos/), through ``keras_cnn.explain.explain`` exactly as
  ``keras-cnn explain mobilenet_v2 --weights FILE chelsea.jpg --method M`` runs: its first-layer filters, the
  feature maps of P3 and deconvnet projections of P2, the occlusion map and Grad-CAM of its top class.
- resnet20 trained here (as tests/test_explain.py trains it: 2 epochs on 1,000 images) to tell horizontal from
  vertical stripes in a 10x10 square on noise: Grad-CAM and occlusion on a held-out image, where the answer is
  known (the square), its first-layer filters and the deconvnet projections of P1.

    # REAL: the folder of real measurement data outside the repository
    python benchmarks/explain_pictures.py --weights REAL/mobilenet_v2_imagenet_torchvision_layout.pth
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "images" / "explain"


def checkpoint_pictures(weights: Path, folder: Path) -> list[Path]:
    from keras_cnn.deploy.calibration import PHOTO_FOLDER
    from keras_cnn.explain import explain

    photo = PHOTO_FOLDER / "chelsea.jpg"
    made = []
    for method, layers in (("filters", None), ("features", ["P3"]), ("deconvnet", ["P2"]), ("occlusion", None),
                           ("gradcam", None)):
        started = time.perf_counter()
        index = explain("mobilenet_v2", [photo] if method != "filters" else [], method, layers=layers,
                        weights=str(weights), output=folder / method, top=8 if method == "deconvnet" else None)
        for picture in index["pictures"]:
            target = OUTPUT / f"mobilenet_v2_{picture['file']}"
            shutil.copyfile(folder / method / picture["file"], target)
            made.append(target)
            shown = {k: picture[k] for k in ("class", "probability", "level", "layer") if k in picture}
            print(f"{target.relative_to(ROOT)}: {shown} ({time.perf_counter() - started:.1f} s)")
    return made


def trained_here_pictures(folder: Path) -> list[Path]:
    import keras
    from PIL import Image

    sys.path.insert(0, str(ROOT / "tests"))
    from test_explain import SIZE, evidence_images

    import keras_cnn
    from keras_cnn.explain import explain
    from keras_cnn.training import optimizers

    keras.utils.set_random_seed(0)
    images, labels, _ = evidence_images(1000, seed=0)
    model = keras_cnn.build("resnet20", num_classes=2, input_shape=(SIZE, SIZE, 1))
    model.compile(optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, batch_size=32, epochs=2, verbose=0)
    saved = folder / "stripes_resnet20.keras"
    model.save(saved)
    held_out, held_labels, boxes = evidence_images(4, seed=1)
    image_file = folder / f"stripes_{'horizontal' if held_labels[0] == 0 else 'vertical'}.png"
    Image.fromarray((held_out[0, :, :, 0] * 255).round().astype("uint8")).save(image_file)
    print(f"held-out image: class {held_labels[0]}, square at rows {boxes[0][0]}..{boxes[0][2] - 1}, "
          f"columns {boxes[0][1]}..{boxes[0][3] - 1}")
    made = []
    for method, options in (("gradcam", {}), ("occlusion", {"size": 8, "stride": 2}), ("filters", {}),
                            ("deconvnet", {"layers": ["P1"], "top": 6})):
        index = explain(saved, [image_file], method, output=folder / method, **options)
        for picture in index["pictures"]:
            target = OUTPUT / f"resnet20_{picture['file']}"
            shutil.copyfile(folder / method / picture["file"], target)
            made.append(target)
            shown = {k: picture[k] for k in ("peak", "class", "probability", "layer", "channels") if k in picture}
            print(f"{target.relative_to(ROOT)}: {shown}")
    return made


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True,
                        help="REAL/mobilenet_v2_imagenet_torchvision_layout.pth (a torchvision state_dict)")
    args = parser.parse_args()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        made = checkpoint_pictures(args.weights, Path(tmp)) + trained_here_pictures(Path(tmp))
    for path in made:
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
