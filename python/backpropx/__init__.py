"""backpropx: train multilayer neural networks by backpropagation, in C++.

>>> import backpropx as bx
>>> net = bx.Network([bx.Dense(64, 32, activation="relu"),
...                   bx.Dense(32, 10, activation="softmax")], seed=0)
>>> trainer = bx.Trainer(net, loss="cross_entropy", optimizer=bx.Adam(lr=1e-3), batch_size=32)
"""

from . import distributed
from ._core import NonFiniteError, __version__
from .callbacks import Callback, CSVLogger, EarlyStopping, ModelCheckpoint
from .datasets import load_digits, train_test_split
from .distributed import DistributedError, MPIGroup
from .gradcheck import GradcheckResult, gradcheck
from .history import History
from .layers import ACTIVATIONS, Activation, Dense, Dropout, Flatten, Layer, Reshape, Residual
from .layers import (AvgPool1D, AvgPool2D, BatchNorm1D, BatchNorm2D, Conv1D, Conv2D, GlobalAvgPool, LayerNorm,
                     MaxPool1D, MaxPool2D)
from .lbfgs import LBFGSResult, fit_lbfgs
from .layers import GRU, LSTM, Embedding, SimpleRNN
from .network import LOSSES, Network
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, Rprop
from .runtime import (config, get_kernel, get_num_threads, set_kernel, set_num_threads, show_config,
                      supported_kernels)
from .schedules import CosineAnnealingLR, ExponentialLR, LRSchedule, ReduceLROnPlateau, StepLR
from .threads import register_with_threadpoolctl, warn_about_ignored_environment
from .trainer import GradientWarning, Trainer

warn_about_ignored_environment()
register_with_threadpoolctl()

# The exception comes from the C++ module, which gives it no docstring.
NonFiniteError.__doc__ = (
    "Training produced NaN or infinity (a FloatingPointError). Raised before the "
    "offending batch's update is applied; earlier updates stay applied.")

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "Flatten",
    "Reshape",
    "Residual",
    "LOSSES",
    "SGD",
    "StepLR",
    "Adagrad",
    "Adam",
    "AdamW",
    "CSVLogger",
    "Callback",
    "CosineAnnealingLR",
    "Dense",
    "DistributedError",
    "Dropout",
    "Embedding",
    "GRU",
    "LSTM",
    "SimpleRNN",
    "EarlyStopping",
    "ExponentialLR",
    "GradcheckResult",
    "GradientWarning",
    "History",
    "LBFGSResult",
    "LRSchedule",
    "Layer",
    "MPIGroup",
    "ModelCheckpoint",
    "Network",
    "NonFiniteError",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "Rprop",
    "Trainer",
    "__version__",
    "config",
    "distributed",
    "fit_lbfgs",
    "get_kernel",
    "get_num_threads",
    "gradcheck",
    "load_digits",
    "set_kernel",
    "set_num_threads",
    "show_config",
    "supported_kernels",
    "train_test_split",
]
__all__ += ["AvgPool1D", "AvgPool2D", "BatchNorm1D", "BatchNorm2D", "Conv1D", "Conv2D", "GlobalAvgPool",
            "LayerNorm", "MaxPool1D", "MaxPool2D"]
