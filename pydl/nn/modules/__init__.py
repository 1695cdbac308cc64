"""The layer classes of pydl.nn."""
from .activation import (CELU, ELU, GELU, Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax, Maxout, PReLU, ReLU, ReLU6,
                         SELU, SiLU, Sigmoid, Softmax, Softmin, Softplus, Tanh)
from .container import ModuleDict, ModuleList, Sequential
from .linear import Dropout, Embedding, Flatten, Identity, Linear, Unflatten
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss,
                   MultiMarginLoss, NLLLoss, SVMLoss, SmoothL1Loss)
from .module import Module
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout2d, StochasticDepth
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm
from .pooling import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, FractionalMaxPool2d, MaxPool2d,
                      MaxUnpool2d)
from .attention import LearnedPositionalEncoding, MultiheadAttention, PositionalEncoding
from .rnn import GRU, GRUCell, LSTM, LSTMCell, RNN, RNNCell, RNNBase, RNNCellBase
from .transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
                          TransformerEncoderLayer)
from .upsampling import PixelShuffle, PixelUnshuffle, Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = ["BCELoss", "BCEWithLogitsLoss", "CELU", "CrossEntropyLoss", "Dropout", "ELU", "Embedding", "Flatten",
           "GELU", "Hardtanh", "HuberLoss", "Identity", "KLDivLoss", "L1Loss", "LeakyReLU", "Linear", "LogSigmoid",
           "LogSoftmax", "MSELoss", "Maxout", "Module", "ModuleDict", "ModuleList", "MultiMarginLoss", "NLLLoss",
           "PReLU", "ReLU", "ReLU6", "SELU", "SVMLoss", "Sequential", "SiLU", "Sigmoid", "SmoothL1Loss", "Softmax",
           "Softmin", "Softplus", "Tanh", "Unflatten"]
__all__ += ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d",
            "ConvTranspose2d", "Dropout2d", "FractionalMaxPool2d", "GroupNorm", "InstanceNorm2d", "LayerNorm",
            "MaxPool2d", "MaxUnpool2d", "PixelShuffle", "PixelUnshuffle", "StochasticDepth", "Upsample",
            "UpsamplingBilinear2d", "UpsamplingNearest2d"]
__all__ += ["GRU", "GRUCell", "LSTM", "LSTMCell", "LearnedPositionalEncoding", "MultiheadAttention",
            "PositionalEncoding", "RNN", "RNNBase", "RNNCell", "RNNCellBase", "Transformer", "TransformerDecoder",
            "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer"]
