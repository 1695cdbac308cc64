"""The ``pydl`` command.

    pydl bench [FAMILY ...] [--json FILE] [--repeat N] [--threads N] [--quick]
    pydl config

Each subcommand is an ``add_<name>(subparsers)`` function registering its parser and the
function it runs (``func(args) -> exit status``); ``SUBCOMMANDS`` lists them. Planned:
``train``, ``summary``, ``demo``.
"""
import argparse
import os
import sys


def _bench(args):
    from . import bench

    return bench.run(args.families, repeat=args.repeat, threads=args.threads, quick=args.quick,
                     json_path=args.json)


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
    p = subparsers.add_parser("config", help="print pydl's build and run-time configuration")
    p.set_defaults(func=_config)


SUBCOMMANDS = [add_bench, add_config]


def build_parser():
    parser = argparse.ArgumentParser(prog="pydl", description="pydl: the deep-learning course as a small, fast library.")
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
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
