"""``keras-cnn train | evaluate | predict | tune``: run folders, their use, and hyperparameter search."""

from __future__ import annotations

import json

from keras_cnn.cli.common import is_json, parse_option, split_choice
from keras_cnn.data import image_files
from keras_cnn.training.distribute import cluster_from, split_cpu
from keras_cnn.training.evaluate import evaluate, predict
from keras_cnn.training.run import train
from keras_cnn.training.tune import tune


def cmd_train(args):
    settings = {key: getattr(args, key) for key in (
        "epochs", "batch_size", "image_size", "learning_rate", "optimizer", "schedule", "warmup_epochs",
        "label_smoothing", "weight_decay", "ema", "mixup", "cutmix", "mixed_precision", "strategy", "limit", "data_dir",
        "seed", "weights", "freeze_epochs", "backbone_lr_factor")}
    settings["train_batch_norm"] = True if args.train_batch_norm else None
    settings["jit_compile"] = True if args.jit_compile else None
    settings["augment"] = False if args.no_augment else None
    settings["deterministic"] = False if args.no_deterministic else None
    if args.option:
        settings["model_options"] = dict(parse_option(o) for o in args.option)
    if args.mirrored_cpus:
        split_cpu(args.mirrored_cpus)
    cluster = cluster_from(args.coordinator, args.num_processes, args.process_id, args.cluster_timeout)
    train(args.name, args.dataset, output=args.output, resume=args.resume, verbose=args.verbose, cluster=cluster,
          **settings)
    return 0


def cmd_evaluate(args):
    print(json.dumps(evaluate(args.run, args.dataset, split=args.split, checkpoint=args.checkpoint,
                              data_dir=args.data_dir)))
    return 0


def cmd_predict(args):
    if args.top < 1:
        raise ValueError(f"--top must be a positive integer, received {args.top}")
    files = image_files(args.images)  # folders expand to the images in them
    for file, top in zip(files, predict(args.run, files, top=args.top, checkpoint=args.checkpoint)):
        ranked = ", ".join(f"{entry['class']} {entry['probability']:.3f}" for entry in top)
        print(f"{file}: {ranked}")
    return 0


def cmd_tune(args):
    fixed = dict(parse_option(o) for o in args.fix)
    choices = {key: [json.loads(v) if is_json(v) else v for v in values.split(",")]
               for key, values in (split_choice(c) for c in args.choice)}
    family = args.family if "," not in args.family else args.family.split(",")
    tune(family, args.dataset, tuner=args.tuner, max_trials=args.max_trials, epochs=args.epochs,
         directory=args.directory, overwrite=args.overwrite, fixed=fixed, choices=choices, image_size=args.image_size,
         batch_size=args.batch_size, limit=args.limit, data_dir=args.data_dir, seed=args.seed, verbose=args.verbose)
    return 0


def add_train_arguments(p):
    """The ``keras-cnn train`` flags (defaults: the model's recipe, ``keras_cnn.get_spec(name).recipe``)."""
    p.add_argument("--dataset", default=None, help="digits (the default), fashion_mnist, mnist, folder, or a tfds "
                   "name; with --resume: the run's")
    p.add_argument("--data-dir", default=None, help="IDX files, an image folder (one sub-folder per class) or a "
                   "tensorflow-datasets data folder (a data set prepared there is loaded by its name)")
    p.add_argument("--epochs", type=int, default=None, help="with --resume: may grow, to train longer")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None,
                   help="default: the data's size, at least the model's minimum")
    p.add_argument("--lr", dest="learning_rate", type=float, default=None)
    p.add_argument("--optimizer", choices=("sgd", "adamw", "adam"), default=None)
    p.add_argument("--schedule", choices=("cosine", "step", "constant"), default=None)
    p.add_argument("--warmup", dest="warmup_epochs", type=int, default=None, help="warm-up epochs")
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--ema", type=float, default=None,
                   help="momentum of a moving average of the weights, evaluated and saved (e.g. 0.999; 0: off)")
    p.add_argument("--mixup", type=float, default=None, help="MixUp alpha (0: off)")
    p.add_argument("--cutmix", type=float, default=None, help="CutMix factor (0: off)")
    p.add_argument("--no-augment", action="store_true", help="no random translation")
    p.add_argument("--no-deterministic", action="store_true",
                   help="leave TensorFlow's op determinism off (about 3%% faster steps on a CPU; the data's and the "
                        "model's random draws stay keyed on seed, epoch and step)")
    p.add_argument("--mixed-precision", nargs="?", const="auto", choices=("auto", "float16", "bfloat16"),
                   default=None, help="mixed_float16 on GPU, mixed_bfloat16 on CPU (auto)")
    p.add_argument("--jit-compile", action="store_true", help="XLA-compile the train step")
    p.add_argument("--strategy", choices=("none", "mirrored", "data_parallel"), default=None)
    p.add_argument("--mirrored-cpus", type=int, default=0, help="split the CPU into N logical devices (testing)")
    p.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="multi-process data_parallel (jax): process 0's address (or KERAS_CNN_COORDINATOR)")
    p.add_argument("--num-processes", type=int, default=None,
                   help="processes in the run (or KERAS_CNN_NUM_PROCESSES / SLURM_NTASKS)")
    p.add_argument("--process-id", type=int, default=None,
                   help="this process, 0 .. N-1; 0 writes the run folder (or KERAS_CNN_PROCESS_ID / SLURM_PROCID)")
    p.add_argument("--cluster-timeout", type=int, default=300,
                   help="seconds to wait for the other processes (start-up, a step) before exiting with an error")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--option", action="append", default=[], help="builder option KEY=VALUE, e.g. alpha=0.5")
    p.add_argument("--weights", default=None,
                   help="start from a checkpoint: imagenet, cifar10, torchvision, timm, akamaster, LIBRARY:TAG, or a "
                        ".pth/.th/.safetensors/.weights.h5 file or timm folder (the classifier starts fresh for new "
                        "classes)")
    p.add_argument("--freeze-epochs", type=int, default=None,
                   help="with --weights: train only the new classifier for the first N epochs (default 1)")
    p.add_argument("--backbone-lr-factor", type=float, default=None, metavar="F",
                   help="with --weights: once the backbone is unfrozen the whole net trains at F x --lr, after a "
                        "warm-up (default 0.1)")
    p.add_argument("--train-batch-norm", action="store_true",
                   help="with --weights: train the backbone's BatchNorm layers too (default: inference mode, the "
                        "checkpoint's statistics kept)")
    p.add_argument("--output", default=None, help="run folder (default runs/<name>_<dataset>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its last epoch, with its "
                   "settings (a flag that differs is an error; --epochs may grow)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)


def add_parsers(sub):
    """Add this group's sub-commands to the ``keras-cnn`` parser."""
    p = sub.add_parser("train", help="train a model into a run folder (checkpoints, logs, plots, summary)")
    p.add_argument("name")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test top-1/top-5 of a run folder or a .keras file")
    p.add_argument("run", help="run folder or .keras file")
    p.add_argument("--dataset", default=None, help="default: the run's own data set")
    p.add_argument("--split", default=None, help="default: the run's test split")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="top-5 classes (with names) of image files")
    p.add_argument("run", help="run folder or .keras file")
    p.add_argument("images", nargs="+", help="image files, or folders of images")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("tune", help="Keras Tuner search over a family; writes results.csv and best.keras")
    p.add_argument("--family", required=True, help="a family (mobilenet, resnet, ...) or comma-separated names")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--tuner", choices=("random", "hyperband", "bayesian"), default="random")
    p.add_argument("--max-trials", type=int, default=10)
    p.add_argument("--epochs", type=int, default=5, help="epochs per trial (Hyperband: the most per trial)")
    p.add_argument("--directory", default=None, help="default runs/tune/<family>_<dataset>")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming the search")
    p.add_argument("--fix", action="append", default=[], help="pin a hyperparameter KEY=VALUE, e.g. alpha=0.5")
    p.add_argument("--choice", action="append", default=[], help="narrow KEY=V1,V2, e.g. variant=mobilenet_v2")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0)
    p.set_defaults(func=cmd_tune)
