"""Utilities around models: ``summary`` (per-layer shapes, parameters, multiply-adds and
activation memory); ``gradcheck`` is re-exported from :mod:`pydl.autograd`."""
from ..autograd.gradcheck import gradcheck
from .summary import LayerSummary, ModelSummary, summary

__all__ = ["LayerSummary", "ModelSummary", "gradcheck", "summary"]
