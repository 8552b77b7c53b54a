"""A character-level language model: Embedding -> LSTM -> Dense over every step,
trained on six plays of Shakespeare (public domain, examples/data/NOTICE) to
predict each next character. Reports bits per character on held-out text (the
last 10%, never trained on) and prints a sample it writes.

    python examples/char_lm.py                      # hidden 256, 4 epochs (minutes on 2 cores)
    python examples/char_lm.py --hidden 64 --epochs 1 --chars 100000
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

import backpropx as bx

TEXT = Path(__file__).resolve().parent / "data" / "shakespeare.txt"


def load_text(chars: int | None = None) -> str:
    text = TEXT.read_text(encoding="utf-8")
    return text if chars is None else text[:chars]


def windows(ids: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows: inputs ids[i : i+T], targets ids[i+1 : i+T+1]."""
    count = (len(ids) - 1) // steps
    X = ids[:count * steps].reshape(count, steps)
    y = ids[1:count * steps + 1].reshape(count, steps)
    return X, y


def build(vocab: int, hidden: int, embed: int, steps: int, seed: int) -> bx.Network:
    return bx.Network([
        bx.Embedding(vocab, embed),                           # ids (n, T) -> (n, T, E)
        bx.LSTM(embed, hidden, return_sequences=True),        # (n, T, H)
        bx.Dense(hidden, vocab),                              # logits at every step (n, T, V)
    ], input_shape=(steps,), seed=seed)


def sample(net: bx.Network, prompt: str, chars: list[str], length: int, rng: np.random.Generator,
           temperature: float = 0.8) -> str:
    """Writes `length` characters after `prompt`, each drawn from the model's next-character
    distribution given the last T characters (shorter windows padded, their lengths given)."""
    steps = net.input_shape[0]
    index = {c: i for i, c in enumerate(chars)}
    ids = [index[c] for c in prompt if c in index]
    for _ in range(length):
        window = ids[-steps:]
        X = np.zeros((1, steps), dtype=np.int64)
        X[0, :len(window)] = window
        logits = net.predict(X, lengths=[len(window)])[0, len(window) - 1].astype(np.float64)
        p = np.exp((logits - logits.max()) / temperature)
        ids.append(int(rng.choice(len(chars), p=p / p.sum())))
    return "".join(chars[i] for i in ids)


def main(hidden: int = 256, epochs: int = 4, chars: int | None = None, steps: int = 100, embed: int = 32,
         batch_size: int = 32, lr: float = 3e-3, seed: int = 0, sample_length: int = 400) -> float:
    text = load_text(chars)
    vocab = sorted(set(text))
    lookup = {c: i for i, c in enumerate(vocab)}
    ids = np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
    cut = int(len(ids) * 0.9)
    X, y = windows(ids[:cut], steps)
    Xv, yv = windows(ids[cut:], steps)
    print(f"{len(text):,} characters ({len(vocab)} distinct): {len(X):,} training and {len(Xv):,} held-out "
          f"windows of {steps}")
    counts = np.bincount(ids[:cut], minlength=len(vocab)) + 1
    unigram = -np.sum(counts / counts.sum() * np.log2(counts / counts.sum()))
    print(f"baseline: character frequencies alone give {unigram:.2f} bits per character")

    net = build(len(vocab), hidden, embed, steps, seed)
    trainer = bx.Trainer(net, loss="cross_entropy", optimizer=bx.Adam(lr=lr), batch_size=batch_size,
                         seed=seed, clip_grad_norm=5.0)
    bpc = float("nan")
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        trainer.fit(X, y, epochs=1, verbose=0)
        bpc = trainer.evaluate(Xv, yv)["loss"] / math.log(2)
        print(f"epoch {epoch}: held-out {bpc:.3f} bits per character ({time.perf_counter() - start:.0f} s)",
              flush=True)
    text_out = sample(net, "HAMLET:\n", vocab, sample_length, np.random.default_rng(seed))
    print("--- sample ---")
    print(text_out)
    print("---")
    print(f"held-out bits per character: {bpc:.3f}")
    return bpc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--chars", type=int, default=None, help="use only the first CHARS characters")
    parser.add_argument("--steps", type=int, default=100, help="characters per training window")
    args = parser.parse_args()
    main(hidden=args.hidden, epochs=args.epochs, chars=args.chars, steps=args.steps)
