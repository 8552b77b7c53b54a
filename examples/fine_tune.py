"""Fine-tuning: a pretrained feature extractor, frozen, under a new head.

A network 64-128-64-C is pretrained on a task with plenty of labels. Its
body (the two hidden layers) then serves as a feature extractor for a new
task with only a few labels (``--labels-per-class``): the body is copied
into a new Network, frozen (``layer.trainable = False``), and a new
Dense(64, C') softmax head learns on top. The comparison is the same
architecture trained from scratch on the same few labels, with the same
optimizer (Adam, full batch) and epochs. Each comparison is repeated for
``--draws`` independent draws of the labelled set; held-out accuracies are
reported as mean, min and max. Building a Network from layers of another
network copies their weights, so the pretrained network is not changed.

Two pairs of tasks on the 8x8 digits, one where transfer should help and one
where it may not:

- *digits -> parity*: pretrained to recognise the ten digits on one half of
  the images; the new task is "is the digit odd?" on the other half (the
  few labels come from one quarter of the images, the test set is the last
  quarter). The new question is a function of what the body learned to see.
- *digits 0-4 -> digits 5-9*: pretrained on all the 0-4 digits; the new task
  is to tell 5-9 apart (few labels from one half of the 5-9 digits, tested
  on the other half). The body never had to tell a 5 from an 8, and its
  features, specialised to 0-4, may serve the new classes worse than
  learning from the raw pixels.

Run ``python examples/fine_tune.py`` (full settings) or ``--quick`` (the tests').
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import numpy as np

import backpropx as bx


class Task(NamedTuple):
    X: np.ndarray
    y: np.ndarray
    classes: int


def network(classes: int, seed: int) -> bx.Network:
    return bx.Network([bx.Dense(64, 128, activation="relu"), bx.Dense(128, 64, activation="relu"),
                       bx.Dense(64, classes, activation="softmax")], seed=seed)


def accuracy(net: bx.Network, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(net.predict(X).argmax(axis=1) == y))


def fit(net: bx.Network, X: np.ndarray, y: np.ndarray, epochs: int, lr: float, batch_size: int) -> None:
    bx.Trainer(net, optimizer=bx.Adam(lr=lr), batch_size=batch_size, seed=0).fit(X, y, epochs=epochs, verbose=0)


def compare(source: Task, pool: Task, test: Task, args: argparse.Namespace) -> dict[str, object]:
    """Pretrain on `source`; then, for each draw of a few labels from `pool`,
    train a frozen-body transfer network and a scratch network; test on `test`."""
    pretrained = network(source.classes, args.seed)
    fit(pretrained, source.X, source.y, args.pretrain_epochs, args.lr, 32)
    before = [layer.weight.copy() for layer in pretrained.layers]
    rng = np.random.default_rng(args.seed)
    transfer_acc, scratch_acc = [], []
    frozen_unchanged = True
    for draw in range(args.draws):
        chosen = np.concatenate([rng.choice(np.flatnonzero(pool.y == c), args.labels_per_class, replace=False)
                                 for c in range(pool.classes)])
        X_few, y_few = pool.X[chosen], pool.y[chosen]
        head_seed = args.seed + 1 + draw

        transfer = bx.Network([*pretrained.layers[:2], bx.Dense(64, pool.classes, activation="softmax")],
                              seed=head_seed)
        for layer in transfer.layers[:2]:
            layer.trainable = False          # the copied feature extractor stays as pretrained
        frozen = [layer.weight.copy() for layer in transfer.layers[:2]]
        fit(transfer, X_few, y_few, args.epochs, args.lr, len(X_few))
        frozen_unchanged &= all(np.array_equal(w, layer.weight) for w, layer in zip(frozen, transfer.layers))
        transfer_acc.append(accuracy(transfer, test.X, test.y))

        scratch = network(pool.classes, head_seed)
        fit(scratch, X_few, y_few, args.epochs, args.lr, len(X_few))
        scratch_acc.append(accuracy(scratch, test.X, test.y))
    untouched = all(np.array_equal(w, layer.weight) for w, layer in zip(before, pretrained.layers))
    return {"source_accuracy": accuracy(pretrained, source.X, source.y), "transfer": np.array(transfer_acc),
            "scratch": np.array(scratch_acc), "frozen_unchanged": frozen_unchanged, "untouched": untouched,
            "labels": len(X_few), "test_size": len(test.y)}


def report(title: str, r: dict[str, object], draws: int) -> None:
    print(f"{title}: pretrained to {r['source_accuracy']:.2%} training accuracy; {r['labels']} labels, "
          f"{r['test_size']} test digits, {draws} draws")
    for key, label in (("transfer", "pretrained body, frozen, new head"), ("scratch", "from scratch")):
        acc = r[key]
        print(f"  {label:34s} held-out accuracy: mean {acc.mean():.2%} (min {acc.min():.2%}, max {acc.max():.2%})")
    wins = int(np.sum(r["transfer"] > r["scratch"]))
    print(f"  transfer better in {wins} of {draws} draws; frozen layers unchanged: {r['frozen_unchanged']}; "
          f"pretrained network untouched: {r['untouched']}")


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=int, default=30)
    parser.add_argument("--labels-per-class", type=int, default=10, help="labelled samples per class of the new task")
    parser.add_argument("--epochs", type=int, default=200, help="full-batch epochs on the few labels")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--draws", type=int, default=20, help="independent draws of the labelled set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of the C++ core (results are identical for any count; one is fastest "
                             "for networks this small)")
    parser.add_argument("--quick", action="store_true", help="the tests' settings: 5 draws")
    args = parser.parse_args(argv)
    if args.quick:
        args.draws = 5

    threads_before = bx.get_num_threads()
    bx.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        bx.set_num_threads(threads_before)


def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    X, y = bx.load_digits()
    X = X / 16.0
    results = {}

    # digits -> parity: disjoint images for pretraining, the few labels and the test.
    X_a, X_b, y_a, y_b = bx.train_test_split(X, y, test_fraction=0.5, seed=args.seed)
    X_pool, X_test, y_pool, y_test = bx.train_test_split(X_b, y_b, test_fraction=0.5, seed=args.seed + 1)
    r = compare(Task(X_a, y_a, 10), Task(X_pool, y_pool % 2, 2), Task(X_test, y_test % 2, 2), args)
    report("digits -> parity (is it odd?)", r, args.draws)
    results["parity"] = r

    # digits 0-4 -> digits 5-9.
    low, high = y < 5, y >= 5
    X_pool, X_test, y_pool, y_test = bx.train_test_split(X[high], y[high] - 5, test_fraction=0.5, seed=args.seed)
    r = compare(Task(X[low], y[low], 5), Task(X_pool, y_pool, 5), Task(X_test, y_test, 5), args)
    report("digits 0-4 -> digits 5-9", r, args.draws)
    results["five_to_nine"] = r

    return {name: {"transfer": float(r["transfer"].mean()), "scratch": float(r["scratch"].mean()),
                   "transfer_wins": int(np.sum(r["transfer"] > r["scratch"])),
                   "frozen_unchanged": bool(r["frozen_unchanged"]), "untouched": bool(r["untouched"])}
            for name, r in results.items()}


if __name__ == "__main__":
    main()
