"""A plain-NumPy reference implementation of backpropx's mathematics.

Every activation, every layer kind (``stack.KINDS``: dense, activation,
dropout, flatten, reshape, residual -- forward, backward, shapes), the
losses over the last axis, backprop through any stack of layers, the
optimizers (torch.optim's rules and defaults) and a central-difference
gradient checker, each written from its equations (cited in the
docstrings), not translated from the C++ core. It does not import
backpropx; ``tests/test_reference_vs_torch.py`` checks it against PyTorch,
and the core's tests check the core against it.

How to add a layer kind: its forward/backward math in a module of its own,
one :class:`Kind` entry in ``stack.KINDS``, its configuration generator in
``tests/test_layer_kinds.py`` and its torch form in
``tests/test_reference_vs_torch.py``; the per-kind tests then cover it.

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
    poisson,
)
from .dropout import dropout_backward, dropout_forward
from .network import (
    backward,
    forward,
    forward_with_upstream_gradients,
    loss_and_gradients,
    loss_value,
    network_forward,
    network_vjp,
)
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, Rprop
from .reshape import resolve_shape
from .stack import KINDS, Kind, Pass, param_shapes, stack_backward, stack_forward, stack_shapes
from .norm import running_update

__all__ = [
    "ACTIVATIONS",
    "BCE_EPSILON",
    "BCE_LOG_CLAMP",
    "ELU_ALPHA",
    "KINDS",
    "LEAKY_RELU_SLOPE",
    "LOSSES",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Kind",
    "Optimizer",
    "Pass",
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
    "dropout_backward",
    "dropout_forward",
    "forward",
    "forward_with_upstream_gradients",
    "log_softmax",
    "loss_and_gradients",
    "loss_value",
    "max_relative_error",
    "mse",
    "network_forward",
    "network_vjp",
    "one_hot",
    "poisson",
    "param_shapes",
    "resolve_shape",
    "running_update",
    "softmax",
    "softmax_backward",
    "stack_backward",
    "stack_forward",
    "stack_shapes",
]
