"""The ``pydl`` command.

    pydl demo [--out DIR] [--epochs N] [--task digits|charlm]
    pydl train MODEL --data DATASET [--epochs N --batch-size N --lr LR --optimizer NAME
                                     --scheduler NAME --augment LIST --out DIR ...]
    pydl eval CHECKPOINT [--tta]
    pydl summary MODEL [--data DATASET]
    pydl bench [FAMILY ...] [--json FILE] [--repeat N] [--threads N] [--quick] [--device cpu|cuda]
    pydl config

Each subcommand is an ``add_<name>(subparsers)`` function registering its parser and the
function it runs (``func(args) -> exit status``); ``SUBCOMMANDS`` lists them. The training
commands are thin: the work is in :mod:`pydl.train.runs`.
"""
import argparse
import os
import sys


def _bench(args):
    from . import bench

    return bench.run(args.families, repeat=args.repeat, threads=args.threads, quick=args.quick,
                     json_path=args.json, device=args.device)


def _positive_int(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def add_bench(subparsers):
    from .bench.families import FAMILIES

    p = subparsers.add_parser(
        "bench", help="time pydl's kernels against the NumPy reference, NumPy and PyTorch",
        description="Benchmark kernel families at their canonical shapes: every implementation is "
                    "checked against the float64 truth, then timed alternately (median and min after "
                    "warm-up). Prints a markdown table; exit status 1 if a result was wrong.")
    p.add_argument("families", nargs="*", metavar="FAMILY",
                   help=f"families to run (default: all): {', '.join(FAMILIES)}")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--repeat", type=_positive_int, metavar="N",
                   help="timed calls per implementation (default: about 1 s worth, 5 to 200)")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="threads for pydl, PyTorch and NumPy's OpenBLAS (default: pydl's count)")
    p.add_argument("--quick", action="store_true", help="tiny shapes and 2 calls: checks the harness, not speed")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda: the families' GPU cases (CuPy arrays, CUDA-event timing, PyTorch CUDA as the peer); "
                        "exit status 2 with the reason where CUDA cannot run")
    p.set_defaults(func=_bench, check=lambda parser, args: _check_bench(parser, args, FAMILIES))


def _check_bench(parser, args, known):
    unknown = [n for n in args.families if n not in known]
    if unknown:
        parser.error(f"unknown benchmark family {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    if args.json is not None:  # fail now, not after the run
        directory = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(directory):
            parser.error(f"--json: directory {directory!r} does not exist")
        if os.path.isdir(args.json):
            parser.error(f"--json: {args.json!r} is a directory, expected a file name")


def _config(args):
    from . import show_config

    show_config()
    return 0


def add_config(subparsers):
    p = subparsers.add_parser(
        "config", help="print pydl's build and run-time configuration",
        description="Print pydl's version, the compiler and build type, the SIMD path picked at run time, "
                    "the OpenMP threads, and whether CUDA was built and can run here (and if not, why).")
    p.set_defaults(func=_config)


# ---------------------------------------------------------------- training commands
class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" only where there is a default worth showing."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _positive_float(text):
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return x


def _fraction(text):
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= x < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return x


def _model_names():
    from . import models

    return models.list_models()


def _check_model(parser, name):
    names = _model_names()
    if name.lower() not in names:
        parser.error(f"unknown model {name!r}; known: {', '.join(names)}")


def _check_data(parser, name, root):
    from .data.datasets import dataset_info, list_datasets

    try:
        info = dataset_info(name)
    except ValueError:
        parser.error(f"unknown data set {name!r}; known: {', '.join(list_datasets())}")
    if info.needs_root and root is None:
        parser.error(f"data set {info.name!r} is read from local files: give their folder with --data-root DIR "
                     f"(pydl does not download data)")


def _report(result, out):
    from .train.runs import describe_outputs

    line = f"test accuracy {result['test_accuracy'] * 100:.2f} %  (loss {result['test_loss']:.4f}"
    for k in sorted(key for key in result if key.startswith("test_top")):
        line += f", {k[5:]} {result[k] * 100:.2f} %"
    print(line + f") after {result['epochs_run']} epochs in {result['seconds']:.1f} s")
    if out is not None:
        for label, path in describe_outputs(out):
            print(f"  {label:<16} {path}")
    for note in result.get("notes", []):
        print(f"  note: {note}")


def _train(args):
    from .train.runs import train_run

    out = args.out or os.path.join("pydl-runs", f"{args.model.lower()}-{args.data.lower()}")
    result = train_run(args.model, args.data, data_root=args.data_root, epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, scheduler=args.scheduler,
                       augment=args.augment, out=out, seed=args.seed, workers=args.workers,
                       val_fraction=args.val_fraction, weight_decay=args.weight_decay, momentum=args.momentum,
                       early_stopping=args.early_stopping, max_grad_norm=args.clip_grad,
                       label_smoothing=args.label_smoothing, progress=not args.quiet, resume=args.resume,
                       device=args.device)
    _report(result, out)
    return 0


def add_train(subparsers):
    from .data.datasets import list_datasets
    from .train.runs import AUGMENTATIONS, OPTIMIZERS, SCHEDULERS

    p = subparsers.add_parser(
        "train", help="train a model from the zoo on a data set",
        description="Train MODEL (see `pydl summary --list`) on DATASET, validating every epoch, writing a "
                    "checkpoint, a JSON-lines run log and learning curves into --out, then print the test "
                    "accuracy. Images are normalised with the training split's per-channel mean and std.",
        formatter_class=_DefaultsFormatter)
    p.add_argument("model", metavar="MODEL", help="model name from the zoo (pydl.models.list_models())")
    p.add_argument("--data", required=True, metavar="DATASET",
                   help=f"data set: {', '.join(list_datasets())}")
    p.add_argument("--data-root", metavar="DIR", help="folder with the files of mnist / fashionmnist / cifar10")
    p.add_argument("--epochs", type=_positive_int, default=10, metavar="N", help="epochs to train")
    p.add_argument("--batch-size", type=_positive_int, default=64, metavar="N", help="samples per batch")
    p.add_argument("--lr", type=_positive_float, default=1e-3, metavar="LR",
                   help="learning rate (the peak rate for onecycle)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="optimizer")
    p.add_argument("--momentum", type=float, default=0.9, help="momentum of sgd (Nesterov)")
    p.add_argument("--weight-decay", type=float, default=0.0, metavar="WD", help="L2 weight decay")
    p.add_argument("--scheduler", choices=SCHEDULERS, default="cosine",
                   help="learning-rate schedule: step (x0.1 at 1/2 and 3/4), cosine / linear to 0, onecycle")
    p.add_argument("--augment", default="none", metavar="LIST",
                   help="comma-separated augmentations: " + ", ".join(f"{k} ({v})" for k, v in AUGMENTATIONS.items())
                   .replace("%", "%%"))
    p.add_argument("--label-smoothing", type=_fraction, default=0.0, metavar="EPS", help="label smoothing of the loss")
    p.add_argument("--clip-grad", type=_positive_float, metavar="NORM", help="clip the gradients' global norm")
    p.add_argument("--val-fraction", type=_fraction, default=0.1, metavar="F",
                   help="part of the training split held out for validation (0: none)")
    p.add_argument("--early-stopping", type=_positive_int, metavar="PATIENCE",
                   help="stop when validation accuracy has not improved for PATIENCE epochs")
    p.add_argument("--out", metavar="DIR",
                   help="output folder for checkpoint.safetensors, best.safetensors, log.jsonl, curves.png "
                        "(default: pydl-runs/MODEL-DATASET)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out from its last checkpoint")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, order and augmentation")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="threads loading batches (0: none)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the model and the batches live (cuda: needs pydl's CUDA build, a GPU and CuPy)")
    p.set_defaults(func=_train, check=_check_train)


def _check_train(parser, args):
    _check_model(parser, args.model)
    _check_data(parser, args.data, args.data_root)
    from .train.runs import _parse_augment

    try:
        _parse_augment(args.augment)
    except ValueError as e:
        parser.error(f"--augment: {e}")
    if args.device == "cuda":  # refuse now, not after loading the data
        from . import cuda

        usable, why = cuda.status()
        if not usable:
            parser.error(f"--device cuda: CUDA is not available here: {why}")
    if args.workers < 0:
        parser.error(f"--workers: expected a non-negative integer, got {args.workers}")
    if args.early_stopping and args.val_fraction == 0:
        parser.error("--early-stopping needs a validation split (--val-fraction > 0)")


def _eval(args):
    import json

    from .train.runs import evaluate_checkpoint

    m = evaluate_checkpoint(args.checkpoint, data_root=args.data_root, batch_size=args.batch_size, tta=args.tta)
    cfg = m["config"]
    if args.json:
        print(json.dumps({k: v for k, v in m.items() if k != "config"} | {"model": cfg["model"], "data": cfg["data"]}))
        return 0
    print(f"{cfg['model']} on {cfg['data']} (test split, {m['n']} samples), {m['checkpoint']} after epoch {m['epoch']}"
          + (" with test-time augmentation" if args.tta else ""))
    line = f"test accuracy {m['test_accuracy'] * 100:.2f} %  loss {m['test_loss']:.4f}"
    for k in sorted(key for key in m if key.startswith("test_top")):
        line += f"  {k[5:]} {m[k] * 100:.2f} %"
    print(line)
    return 0


def add_eval(subparsers):
    p = subparsers.add_parser(
        "eval", help="evaluate a saved run on its data set's test split",
        description="Rebuild the model of a checkpoint written by `pydl train` / `pydl demo` (its config names "
                    "the model and the data set) and print its test loss and accuracy.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .safetensors checkpoint, or a run folder")
    p.add_argument("--data-root", metavar="DIR", help="folder of the data files, if not where the run found them")
    p.add_argument("--batch-size", type=_positive_int, default=256, metavar="N", help="samples per batch")
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: average over one-pixel shifts (and flips if trained with them)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.set_defaults(func=_eval)


def _summary(args):
    from . import models
    from .data.datasets import dataset_info
    from .train.runs import model_kwargs

    if args.list:
        for name in _model_names():
            print(name)
        return 0
    if args.model is None:
        print("pydl summary: give a MODEL name (or --list)", file=sys.stderr)
        return 2
    info = dataset_info(args.data)
    net = models.get_model(args.model, **model_kwargs(args.model, info.input_shape, info.num_classes))
    try:
        from .utils import summary
    except ImportError:  # a build without pydl.utils: the layers and the count
        print(net)
        total = sum(p.numel() for p in net.parameters())
        print(f"input {tuple(info.input_shape)} ({info.name}); parameters: {total:,}")
        return 0
    summary(net, tuple(info.input_shape), batch_size=args.batch_size)
    return 0


def add_summary(subparsers):
    p = subparsers.add_parser(
        "summary", help="print a model's layers: output shapes, parameters, multiply-adds, memory",
        description="Build MODEL for the samples of a data set (its input shape and number of classes) and "
                    "print pydl.utils.summary's table: each layer's output shape, parameters, multiply-adds "
                    "and output memory, with the totals.")
    p.add_argument("model", nargs="?", metavar="MODEL", help="model name from the zoo")
    p.add_argument("--data", default="digits28", metavar="DATASET",
                   help="data set whose input shape and classes size the model (default: digits28)")
    p.add_argument("--batch-size", type=_positive_int, default=1, metavar="N",
                   help="batch size the shapes and memory are given for (default: 1)")
    p.add_argument("--list", action="store_true", help="list the model names and exit")
    p.set_defaults(func=_summary, check=_check_summary)


def _check_summary(parser, args):
    if args.model is not None:
        _check_model(parser, args.model)
    _check_data(parser, args.data, root="")


def _demo_charlm(args):
    from .models.charlm import demo

    steps = 100 * args.epochs if args.epochs else 300
    print(f"pydl demo: character-level LSTM on the bundled sonnets ({steps} steps of truncated BPTT, "
          "windows of 64 characters, gradient norm clipped to 1)")
    r = demo(out=args.out, steps=steps, seed=args.seed, progress=not args.quiet)
    print(f"final loss {sum(r['losses'][-20:]) / len(r['losses'][-20:]):.3f} nats/char "
          f"({r['chars_per_second']:,.0f} characters/s)")
    print(f"greedy:\nShall I {r['greedy']}\n\ntemperature {r['temperature']}:\nWhen {r['sampled']}")
    if r.get("checkpoint"):
        print(f"checkpoint: {r['checkpoint']}")
    print(f"samples written to {os.path.join(args.out, 'samples.txt')}")
    return 0


def _demo(args):
    from .train.runs import demo

    if getattr(args, "task", "digits") == "charlm":
        return _demo_charlm(args)
    result = demo(out=args.out, epochs=args.epochs, seed=args.seed, progress=not args.quiet)
    cfg = result["config"]
    print(f"pydl demo: {cfg['model']} on Digits-28 ({cfg['augment']} augmentation, {cfg['optimizer']}, "
          f"{cfg['scheduler']} schedule)")
    _report(result, args.out)
    return 0


def add_demo(subparsers):
    p = subparsers.add_parser(
        "demo", help="train LeNet-5 on the bundled handwritten digits (10 epochs, 5-30 s on 2 cores)",
        description="The main job: train LeNet-5 on scikit-learn's handwritten digits resized to 1x28x28, with "
                    "random-shift augmentation (Adam, one-cycle schedule); show a progress bar, print the test "
                    "accuracy, write the run log, the learning curves and a checkpoint into --out. Needs "
                    "scikit-learn and safetensors; tqdm and matplotlib for the bar and the curves "
                    "(pip install \".[demo]\").",
        formatter_class=_DefaultsFormatter)
    p.add_argument("--out", default="pydl-demo", metavar="DIR", help="output folder")
    p.add_argument("--epochs", type=_positive_int, metavar="N", help="epochs (default: the demo's own number)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.add_argument("--task", choices=["digits", "charlm"], default="digits",
                   help="digits: LeNet-5 on handwritten digits; charlm: a character-level LSTM language model on "
                        "the bundled sonnets (truncated BPTT, gradient clipping, greedy and temperature samples; "
                        "--epochs N runs 100 N steps)")
    p.set_defaults(func=_demo)


SUBCOMMANDS = [add_demo, add_train, add_eval, add_summary, add_bench, add_config]


def build_parser():
    parser = argparse.ArgumentParser(prog="pydl",
                                     description="pydl: the deep-learning course as a small, fast library.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def _reexec_without_openblas_env(argv):
    """Run `pydl bench` again, once, without the OPENBLAS_* variables that distort NumPy.

    OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are read when OpenBLAS loads -- before any of
    this runs -- so the only way to time NumPy's own kernels is a fresh process. Done only
    for the real command line (not for main([...]) from Python), on POSIX, with Python 3.10+
    (sys.orig_argv); PYDL_BENCH_REEXEC=no in the environment (any value) turns it off.
    """
    from .bench.machine import DISTORTING_ENV

    if argv is not None or os.name != "posix" or not hasattr(sys, "orig_argv"):
        return
    if os.environ.get("PYDL_BENCH_REEXEC") or not any(k in os.environ for k in DISTORTING_ENV):
        return
    env = {k: v for k, v in os.environ.items() if k not in DISTORTING_ENV}
    env["PYDL_BENCH_REEXEC"] = "done"  # read back by bench.machine.info()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable] + list(sys.orig_argv[1:]), env)
    except OSError as e:  # carry on in this process; the header shows the variables still set
        print(f"pydl bench: could not re-execute without {', '.join(DISTORTING_ENV)}: {e}", file=sys.stderr)


def main(argv=None):
    """Entry point of the ``pydl`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "check", None):
        args.check(parser, args)
    if args.command == "bench":
        _reexec_without_openblas_env(argv)
    if args.command not in _TRAINING_COMMANDS:
        return args.func(args)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, ImportError, FloatingPointError) as e:
        # bad files, missing optional packages, a diverging run: a message, not a traceback
        print(f"pydl {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = " (continue it with --resume)" if args.command == "train" else ""
        print(f"\npydl {args.command}: interrupted; the last finished epoch is checkpointed{hint}", file=sys.stderr)
        return 130


_TRAINING_COMMANDS = ("demo", "train", "eval", "summary")


if __name__ == "__main__":
    sys.exit(main())
