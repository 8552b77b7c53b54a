"""`python -m backpropx`: train a digit recogniser on the shipped 8x8 digits."""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def demo(out: str, epochs: int, seed: int, verbose: int) -> float:
    import backpropx as bx

    X, y = bx.load_digits()
    X = X / 16.0
    X_train, X_test, y_train, y_test = bx.train_test_split(X, y, test_fraction=0.25, seed=seed)
    net = bx.Network([bx.Dense(64, 128, activation="relu"),
                      bx.Dense(128, 10, activation="softmax")], seed=seed)
    print(f"backpropx {bx.__version__} ({bx.get_kernel()} kernel, {bx.get_num_threads()} threads)")
    print(f"training on {len(X_train)} handwritten 8x8 digits, testing on {len(X_test)} held out")
    print(net)
    trainer = bx.Trainer(net, loss="cross_entropy", optimizer=bx.Adam(lr=3e-3), batch_size=32, seed=seed)
    trainer.fit(X_train, y_train, epochs=epochs, validation_data=(X_test, y_test), verbose=verbose)
    accuracy = float(np.mean(net.predict(X_test).argmax(axis=1) == y_test))
    print(f"held-out accuracy: {accuracy:.2%} on {len(X_test)} digits")
    net.save(out)
    print(f"model saved to {os.path.abspath(out)}")
    return accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backpropx", description=__doc__)
    parser.add_argument("--out", default="digits_model.safetensors", help="where to save the model")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    demo(args.out, args.epochs, args.seed, 0 if args.quiet else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
