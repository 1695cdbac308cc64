"""pydl.nn: layers, activations, losses and their functional forms (PyTorch's names).

Modules register their Parameters, buffers and sub-modules as attributes; ``state_dict``
keys are PyTorch's (``0.weight``, ``fc.bias``), so weights move between the frameworks.
"""
from . import functional, init
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from .parameter import Buffer, Parameter

__all__ = ["Buffer", "Parameter", "functional", "init", "utils"] + list(_modules_all)


def __getattr__(name):
    if name == "utils":  # pydl.nn.utils (clip_grad) is imported on first use
        import importlib

        return importlib.import_module(".utils", __name__)
    raise AttributeError(f"module 'pydl.nn' has no attribute {name!r}")
