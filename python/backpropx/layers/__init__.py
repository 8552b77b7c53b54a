"""Layers: descriptions that a Network turns into C++ layers.

A layer object belongs to at most one Network. Before that it only holds its
configuration; once the Network is built, its parameters (``weight``,
``bias``) are NumPy views of the network's C++ parameter buffer (no copy:
writing to them changes the network), and ``input_shape``/``output_shape``
give its per-sample shapes. One module per layer family, mirroring
``csrc/backpropx/layers/``.
"""

from .activation import Activation
from .base import ACTIVATIONS, INITS, LAYER_KINDS, Layer, layer_from_config, register
from .conv import Conv1D, Conv2D
from .dense import Dense
from .dropout import Dropout
from .norm import BatchNorm1D, BatchNorm2D, LayerNorm
from .pool import AvgPool1D, AvgPool2D, GlobalAvgPool, MaxPool1D, MaxPool2D
from .embedding import Embedding
from .recurrent import GRU, LSTM, SimpleRNN
from .reshape import Flatten, Reshape
from .residual import Residual

__all__ = ["ACTIVATIONS", "INITS", "LAYER_KINDS", "Activation", "Dense", "Dropout", "Flatten", "Layer",
           "Reshape", "Residual", "layer_from_config", "register"]
__all__ += ["AvgPool1D", "AvgPool2D", "BatchNorm1D", "BatchNorm2D", "Conv1D", "Conv2D", "GlobalAvgPool",
            "LayerNorm", "MaxPool1D", "MaxPool2D"]
__all__ += ["GRU", "LSTM", "Embedding", "SimpleRNN"]
