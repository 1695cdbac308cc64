"""pydl: the deep-learning course as a small, fast library.

NumPy reference kernels (the textbook version of each operation), hand-written C++
kernels (and CUDA ones where a GPU exists) behind a PyTorch-like API.
"""
try:
    from . import _C  # noqa: F401
except ImportError as e:  # pragma: no cover - only from an unbuilt source tree
    raise ImportError(
        f"pydl's compiled kernels (pydl._C) are missing from {__path__[0]}: this looks like the "
        "source tree. Install pydl (pip install .) and run from outside the checkout, or use "
        "`pytest`, which does not put the checkout first on sys.path."
    ) from e

from ._config import get_num_threads, set_num_threads, show_config
from . import cuda, kernels

__version__ = "0.1.0"

__all__ = ["__version__", "cuda", "get_num_threads", "kernels", "set_num_threads", "show_config"]
