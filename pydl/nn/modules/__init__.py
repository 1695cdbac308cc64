"""The layer classes of pydl.nn."""
from .activation import (CELU, ELU, GELU, Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax, Maxout, PReLU, ReLU, ReLU6,
                         SELU, SiLU, Sigmoid, Softmax, Softmin, Softplus, Tanh)
from .container import ModuleDict, ModuleList, Sequential
from .linear import Dropout, Embedding, Flatten, Identity, Linear, Unflatten
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss,
                   MultiMarginLoss, NLLLoss, SVMLoss, SmoothL1Loss)
from .module import Module

__all__ = ["BCELoss", "BCEWithLogitsLoss", "CELU", "CrossEntropyLoss", "Dropout", "ELU", "Embedding", "Flatten",
           "GELU", "Hardtanh", "HuberLoss", "Identity", "KLDivLoss", "L1Loss", "LeakyReLU", "Linear", "LogSigmoid",
           "LogSoftmax", "MSELoss", "Maxout", "Module", "ModuleDict", "ModuleList", "MultiMarginLoss", "NLLLoss",
           "PReLU", "ReLU", "ReLU6", "SELU", "SVMLoss", "Sequential", "SiLU", "Sigmoid", "SmoothL1Loss", "Softmax",
           "Softmin", "Softplus", "Tanh", "Unflatten"]
