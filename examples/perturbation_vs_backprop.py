"""Weight perturbation versus backpropagation: the same gradient, two costs.

Weight perturbation nudges each weight up and down and re-runs the network
(two forward passes per weight); backpropagation gets every weight's gradient
from one forward and one backward pass. For a 64-32-10 network (2,410
weights) on a batch of 32 digits, this times both, checks that they agree,
and prints the ratio.
"""

import time

import numpy as np

import backpropx as bx


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> float:
    X, y = bx.load_digits()
    X, y = X[:32] / 16.0, y[:32]
    net = bx.Network([bx.Dense(64, 32, activation="relu"),
                      bx.Dense(32, 10, activation="softmax")], seed=0, dtype="float64")

    backprop = best_of(lambda: net.loss_and_gradients(X, y, loss="cross_entropy"), 200)
    check = bx.gradcheck(net, X, y, loss="cross_entropy")
    perturbation = best_of(lambda: bx.gradcheck(net, X, y, loss="cross_entropy"), 3)

    print(f"network 64-32-10, {net.num_params:,} weights, batch of {len(X)}")
    print(f"backpropagation:     {backprop * 1e6:10.1f} us for the full gradient")
    print(f"weight perturbation: {perturbation * 1e6:10.1f} us ({2 * net.num_params:,} forward passes)")
    print(f"ratio: weight perturbation is {perturbation / backprop:,.0f}x slower")
    print(f"worst relative difference between the two: {check.max_error:.1e}")
    return perturbation / backprop


if __name__ == "__main__":
    main()
