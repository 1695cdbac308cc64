"""Optimizers and learning-rate schedules (PyTorch's ``torch.optim``, same names and defaults).

=================  ==============================================================
``SGD``            gradient descent; momentum (velocity with friction rho), Nesterov
``Adagrad``        per-element steps from the sum of squared gradients
``RMSprop``        AdaGrad with a leaky (decaying) sum
``Adam``           momentum + RMSprop + bias correction; amsgrad
``AdamW``          Adam with decoupled weight decay
``lr_scheduler``   StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR,
                   ConstantLR, LambdaLR, SequentialLR, OneCycleLR, InverseSquareRootLR
=================  ==============================================================
"""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "lr_scheduler"]
