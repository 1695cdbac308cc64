"""pydl.models: the model zoo, with a registry of models by name.

``get_model(name, **kwargs)`` builds the model registered as ``name`` (what ``pydl train
MODEL`` and ``pydl summary MODEL`` use); ``list_models()`` lists the names. A zoo module
registers its builders with the ``register_model`` decorator and is imported below.

Builders take keyword arguments; the command line passes the ones a builder accepts among
``num_classes`` (classes of the data set), ``in_channels`` (channels of an image) and
``in_features`` (the number of values in one sample, for models that flatten their input).

>>> from pydl import models
>>> "mlp" in models.list_models()
True
>>> models.get_model("mlp", in_features=64, num_classes=10)
MLP(
  (layers): Sequential(
    (0): Flatten(start_dim=1, end_dim=-1)
    (1): Linear(in_features=64, out_features=256, bias=True)
    (2): ReLU()
    (3): Linear(in_features=256, out_features=10, bias=True)
  )
)
"""
import importlib
import inspect

__all__ = ["get_model", "list_models", "model_arguments", "register_model"]

_REGISTRY = {}
# zoo modules imported on first use of the registry (each registers its models)
_ZOO_MODULES = ["mlp", "lenet", "alexnet", "vgg", "googlenet", "resnet", "densenet", "mobilenet", "mlp_mixer", "vit", "swin", "captioning",
               "charlm"]


def register_model(name=None):
    """Decorator registering a model builder (a class or a function) under ``name``
    (default: its own name, lower-cased).

    >>> @register_model("tiny")
    ... def tiny(num_classes=2):
    ...     return pydl.nn.Linear(4, num_classes)
    >>> get_model("tiny", num_classes=3).out_features
    3
    >>> _ = _REGISTRY.pop("tiny")  # (an example only: unregister it)
    """
    def decorate(builder):
        key = (name or builder.__name__).lower()
        if key in _REGISTRY and _REGISTRY[key] is not builder:
            raise ValueError(f"register_model: a model named {key!r} is registered already ({_REGISTRY[key]!r})")
        _REGISTRY[key] = builder
        return builder

    if callable(name):  # used as @register_model without parentheses
        builder, name = name, None
        return decorate(builder)
    return decorate


_loaded = []


def _load_zoo():
    if _loaded:
        return
    _loaded.append(True)
    for mod in _ZOO_MODULES:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:  # a zoo module not written yet
            if e.name != f"{__name__}.{mod}":
                raise


def list_models():
    """The registered model names, sorted."""
    _load_zoo()
    return sorted(_REGISTRY)


def _builder(name):
    _load_zoo()
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def model_arguments(name):
    """The keyword arguments the builder of ``name`` accepts."""
    params = inspect.signature(_builder(name)).parameters
    return [p for p, v in params.items() if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)]


def get_model(name, **kwargs):
    """Build the model registered as ``name`` with ``kwargs``."""
    builder = _builder(name)
    try:
        inspect.signature(builder).bind(**kwargs)
    except TypeError as e:
        raise TypeError(f"get_model({name!r}): {e}; it takes {', '.join(model_arguments(name)) or 'no arguments'}") \
            from None
    return builder(**kwargs)


def __getattr__(name):
    # pydl.models.MLP, pydl.models.LeNet5, ...: whatever a zoo module defines
    _load_zoo()
    for mod in _ZOO_MODULES:
        full = f"{__name__}.{mod}"
        module = importlib.sys.modules.get(full)
        if module is not None and hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
