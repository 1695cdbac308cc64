"""Reverse-mode automatic differentiation: the recorded graph, the engine, gradcheck.

The seeds' picture: every operation is a gate with a local gradient, and backward walks
the graph from the loss to the inputs multiplying upstream gradients by local ones (the
add gate distributes, the mul gate swaps, a copy adds, max routes).
"""
from .engine import backward, grad
from .function import Function, FunctionCtx, Node
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck

__all__ = ["Function", "FunctionCtx", "GradcheckError", "Node", "backward", "enable_grad", "grad", "gradcheck",
           "is_grad_enabled", "no_grad", "set_grad_enabled"]
