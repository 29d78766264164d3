"""The deep-vs-shallow experiment of the ResNet paper (section 4.2, seed 001) with keras_cnn.

Trains two CIFAR ResNets of different depth (default ``resnet20`` vs ``resnet56``) with the same
recipe and prints their train/test accuracy side by side; ``--shortcut`` and the plain-net
comparison of the paper can be explored with the ``shortcut`` option. Offline it uses Debian's
Fashion-MNIST (resized to 32x32); with tensorflow-datasets' CIFAR-10 downloaded, pass
``--dataset cifar10``.

    python benchmarks/resnet_depth.py --epochs 10 --depths 20 56
"""

import argparse
import json
import time

import keras

import keras_cnn
import keras_cnn.analysis.counting
from keras_cnn import data
from keras_cnn.training import run as training


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 56])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()
    train = data.load(args.dataset, "train", image_size=32, channels=3, batch_size=args.batch_size, augment=True)
    test = data.load(args.dataset, "test", image_size=32, channels=3, batch_size=512)
    results = []
    for depth in args.depths:
        keras.utils.set_random_seed(0)
        model = keras_cnn.build("resnet20", depth=depth, num_classes=10)  # any 6n+2 depth
        started = time.time()
        history = training.compile_and_fit(model, train, validation=test, epochs=args.epochs, optimizer="sgd",
                                           learning_rate=args.lr, weight_decay=1e-4, verbose=2)
        results.append({"depth": depth, "params": keras_cnn.analysis.counting.count_trainable(model),
                        "train_accuracy": history.history["accuracy"][-1],
                        "test_accuracy": history.history["val_accuracy"][-1],
                        "seconds": round(time.time() - started, 1)})
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
