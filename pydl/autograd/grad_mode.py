"""Gradient recording switches: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

One process-wide flag (``GradMode.enabled``), read by every op before it records a node.
Unlike PyTorch's the flag is not thread-local: pydl's kernels release the GIL, but the
Python side of a model is expected to run on one thread.
"""
import functools

__all__ = ["GradMode", "enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]


class GradMode:
    """Holder of the flag; ops read ``GradMode.enabled`` (a class attribute: one lookup)."""

    enabled = True


def is_grad_enabled():
    """True when new operations are recorded for backward.

    >>> import pydl
    >>> with pydl.no_grad():
    ...     pydl.is_grad_enabled()
    False
    """
    return GradMode.enabled


class _GradModeContext:
    """A context manager that is also a decorator (``@pydl.no_grad()``)."""

    _mode = True

    def __enter__(self):
        self._prev = GradMode.enabled
        GradMode.enabled = self._mode
        return self

    def __exit__(self, *exc):
        GradMode.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Stop recording the graph (inference, parameter updates).

    >>> import pydl
    >>> x = pydl.ones(2, requires_grad=True)
    >>> with pydl.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    _mode = False


class enable_grad(_GradModeContext):
    """Record the graph again, inside a ``no_grad`` block."""

    _mode = True


class set_grad_enabled(_GradModeContext):
    """Set recording on or off: a function call, a context manager or a decorator."""

    def __init__(self, mode):
        self._mode = bool(mode)
        self._prev = GradMode.enabled
        GradMode.enabled = self._mode

    def __call__(self, fn):
        GradMode.enabled = self._prev  # used as a decorator: do not leave the flag switched

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self._mode):
                return fn(*args, **kwargs)

        return wrapper

    def __enter__(self):
        return self
