"""The benchmark families: one module each, registered in ``FAMILIES`` below.

A family module declares ``SHAPES`` (its canonical shapes, DESIGN.md's Benchmarks table),
``QUICK`` (tiny shapes for ``pydl bench --quick``) and one function ``case(shape)`` that
builds a :class:`pydl.bench.harness.Case` for a shape -- inputs built once, a callable per
implementation, the float64 truth -- or raises :class:`pydl.bench.harness.Unavailable`
when pydl's kernel is not registered yet. The harness does the checking, warm-up, timing
and reporting. Adding a family is one module here and one line in ``FAMILIES``.
"""
import importlib

# family name (the word `pydl bench` takes, the "family" field of the JSON) -> module
FAMILIES = {
    "gemm": "pydl.bench.families.gemm",
    "conv2d": "pydl.bench.families.conv2d",
    "softmax": "pydl.bench.families.softmax",
    "cross_entropy": "pydl.bench.families.cross_entropy",
    "max_pool2d": "pydl.bench.families.max_pool2d",
    "batch_norm": "pydl.bench.families.batch_norm",
    "layer_norm": "pydl.bench.families.layer_norm",
    "box_iou": "pydl.bench.families.box_iou",
    "nms": "pydl.bench.families.nms",
    "attention": "pydl.bench.families.attention",
    "lstm": "pydl.bench.families.lstm",
    "e2e": "pydl.bench.families.e2e",
}


def load(name):
    """The module of family ``name``."""
    if name not in FAMILIES:
        raise ValueError(f"unknown benchmark family {name!r}; known: {', '.join(FAMILIES)}")
    return importlib.import_module(FAMILIES[name])
