"""MNIST-1D with the paper's recurrent model: a bidirectional GRU reads the 40
values of a sample one step at a time; all 40 outputs (2 x 6 each) are
flattened into a linear classifier (Greydanus & Kobak, "Scaling down deep
learning with MNIST-1D", 2020/2024: GRU, hidden 6, bidirectional, Adam
lr 1e-2, batch 100, 6000 steps; the paper reports 91% test accuracy).

The data set is generated offline by the ``mnist1d`` package (pip install
mnist1d) from its templates with the paper's arguments (4,000 training and
1,000 test samples, seed 42); nothing is downloaded.

    python examples/mnist1d_gru.py                 # the paper's 6000 steps, 3 seeds
    python examples/mnist1d_gru.py --steps 600 --seeds 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import backpropx as bx


def load_mnist1d(num_samples: int = 5000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test), x as (n, 40, 1) float32 sequences."""
    import random

    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    # make_dataset seeds the global NumPy and Python generators: keep the caller's
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)  # generated from templates: no download
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    def as_sequences(x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32)[:, :, None]
    return as_sequences(data["x"]), data["y"].astype(np.int64), as_sequences(data["x_test"]), data["y_test"].astype(np.int64)


def build(seed: int, hidden: int = 6, steps: int = 40) -> bx.Network:
    return bx.Network([
        bx.GRU(1, hidden, bidirectional=True, return_sequences=True),  # (n, 40, 12)
        bx.Flatten(),                                                   # (n, 480)
        bx.Dense(steps * 2 * hidden, 10),
    ], input_shape=(steps, 1), seed=seed)


def train(seed: int, steps: int, data, batch_size: int = 100, lr: float = 1e-2, verbose: bool = True) -> float:
    x_train, y_train, x_test, y_test = data
    net = build(seed)
    trainer = bx.Trainer(net, loss="cross_entropy", optimizer=bx.Adam(lr=lr), batch_size=batch_size, seed=seed)
    epochs = max(1, round(steps * batch_size / len(x_train)))  # 6000 steps of 100 = 150 epochs of 4,000
    start = time.perf_counter()
    trainer.fit(x_train, y_train, epochs=epochs, verbose=0)
    accuracy = trainer.evaluate(x_test, y_test)["accuracy"]
    if verbose:
        print(f"seed {seed}: {epochs} epochs ({epochs * len(x_train) // batch_size} steps) in "
              f"{time.perf_counter() - start:.1f} s, test accuracy {100 * accuracy:.1f}%", flush=True)
    return accuracy


def main(steps: int = 6000, seeds: int = 3, num_samples: int = 5000) -> float:
    data = load_mnist1d(num_samples)
    print(f"MNIST-1D: {len(data[0])} training, {len(data[2])} test sequences of 40 steps")
    accuracies = [train(seed, steps, data) for seed in range(seeds)]
    median = float(np.median(accuracies))
    print(f"median test accuracy over {seeds} seed(s): {100 * median:.1f}% (paper: 91%)")
    return median


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6000, help="optimizer steps (batch 100)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    main(args.steps, args.seeds)
