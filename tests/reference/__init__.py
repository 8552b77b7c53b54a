"""A plain-NumPy reference implementation of backpropx's mathematics.

Every activation, the dense layer, the losses, backprop through a stack of
dense layers, the optimizers (torch.optim's rules and defaults) and a
central-difference gradient checker, each written from its equations (cited
in the docstrings), not translated from the C++ core. It does not import
backpropx; ``tests/test_reference_vs_torch.py`` checks it against PyTorch,
and the core's tests check the core against it.

Arrays keep their dtype: float64 in, float64 arithmetic out (the tight
comparisons); float32 in, float32 arithmetic (GELU's ``erf`` excepted).
"""

from .activations import (
    ACTIVATIONS,
    ELU_ALPHA,
    LEAKY_RELU_SLOPE,
    activation_backward,
    activation_forward,
    softmax,
    softmax_backward,
)
from .dense import dense_backward, dense_backward_from_dz, dense_forward
from .gradcheck import central_difference_gradients, max_relative_error
from .losses import (
    BCE_EPSILON,
    BCE_LOG_CLAMP,
    LOSSES,
    binary_cross_entropy,
    cross_entropy_logits,
    log_softmax,
    mse,
    one_hot,
)
from .network import (
    backward,
    forward_with_upstream_gradients,
    loss_and_gradients,
    loss_value,
    network_forward,
)
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, Rprop

__all__ = [
    "ACTIVATIONS",
    "BCE_EPSILON",
    "BCE_LOG_CLAMP",
    "ELU_ALPHA",
    "LEAKY_RELU_SLOPE",
    "LOSSES",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "Rprop",
    "activation_backward",
    "activation_forward",
    "backward",
    "binary_cross_entropy",
    "central_difference_gradients",
    "cross_entropy_logits",
    "dense_backward",
    "dense_backward_from_dz",
    "dense_forward",
    "forward_with_upstream_gradients",
    "log_softmax",
    "loss_and_gradients",
    "loss_value",
    "max_relative_error",
    "mse",
    "network_forward",
    "one_hot",
    "softmax",
    "softmax_backward",
]
