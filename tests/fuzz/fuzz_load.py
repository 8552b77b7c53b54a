"""Coverage-guided fuzzing of the model loader with atheris.

Every input is written as a model file and loaded; loading must either
succeed (and the network must then predict finite values or raise
FloatingPointError) or raise one of the documented exceptions. Anything else (another exception, a crash, a
sanitizer report) is a finding. The corpus starts from real saved models.

    python tests/fuzz/fuzz_load.py -max_total_time=60      # .ci/run does this
"""

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    import numpy as np

    import backpropx as bx

WORKDIR = tempfile.mkdtemp(prefix="bpx-fuzz-")
PATH = os.path.join(WORKDIR, "input.safetensors")


def seed_corpus(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    nets = [
        bx.Network([bx.Dense(4, 3, activation="relu"), bx.Dense(3, 2, activation="softmax")], seed=0),
        bx.Network([bx.Dense(2, 2, bias=False), bx.Dropout(0.5), bx.Dense(2, 1, activation="sigmoid")],
                   seed=1, dtype="float64"),
    ]
    for i, net in enumerate(nets):
        net.save(os.path.join(directory, f"seed{i}.safetensors"))


def test_one_input(data: bytes) -> None:
    with open(PATH, "wb") as f:
        f.write(data)
    try:
        net = bx.Network.load(PATH)
    except (ValueError, TypeError, OSError, MemoryError):
        return
    try:
        out = net.predict(np.zeros((2, net.in_features)))
    except FloatingPointError:  # absurd but finite weights: an error, never a silent NaN
        return
    if not np.isfinite(out).all():
        raise AssertionError("a loaded network predicted non-finite values")


def main() -> None:
    corpus = os.path.join(WORKDIR, "corpus")
    seed_corpus(corpus)
    atheris.Setup(sys.argv + [corpus], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
