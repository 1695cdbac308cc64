"""Multi-layer perceptrons: the seeds' fully connected networks (lectures 4-6).

``MLP(in_features, hidden, num_classes)``: flatten the input, then Linear -> activation
(-> dropout) per hidden width, then a Linear to the class scores. ``linear`` is the linear
classifier f(x) = Wx + b as a model (no hidden layer).
"""
from .. import nn
from . import register_model

__all__ = ["MLP", "linear_classifier", "mlp"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU,
                "elu": nn.ELU, "silu": nn.SiLU}


class MLP(nn.Module):
    """Flatten -> [Linear(d_i, d_{i+1}) -> activation -> Dropout(p)] per hidden width -> Linear.

    input (N, *) with ``in_features`` values per sample -> scores (N, num_classes).

    >>> net = MLP(4, (8,), 3)
    >>> net(pydl.randn(2, 4)).shape, sum(p.numel() for p in net.parameters())
    ((2, 3), 67)
    """

    def __init__(self, in_features=784, hidden=(256,), num_classes=10, activation="relu", dropout=0.0):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"MLP: unknown activation {activation!r}; known: {', '.join(_ACTIVATIONS)}")
        hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
        layers = [nn.Flatten()]
        width = int(in_features)
        for h in hidden:
            layers += [nn.Linear(width, int(h)), _ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = int(h)
        layers.append(nn.Linear(width, int(num_classes)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


@register_model("mlp")
def mlp(in_features=784, num_classes=10, hidden=(256,), activation="relu", dropout=0.0):
    """A one-hidden-layer perceptron (256 ReLU units by default)."""
    return MLP(in_features, hidden, num_classes, activation, dropout)


@register_model("mlp2")
def mlp2(in_features=784, num_classes=10, hidden=(512, 256), activation="relu", dropout=0.1):
    """Two hidden layers (512, 256) with dropout 0.1."""
    return MLP(in_features, hidden, num_classes, activation, dropout)


@register_model("linear")
def linear_classifier(in_features=784, num_classes=10):
    """The linear classifier f(x) = Wx + b (softmax regression with cross-entropy)."""
    return MLP(in_features, (), num_classes)
