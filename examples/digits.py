"""Recognise real handwritten digits (the 8x8 UCI set shipped with backpropx).

Trains a 64-128-10 network with Adam, reports held-out accuracy and a
confusion matrix, saves the model, and (with matplotlib installed) saves the
learning curves and per-layer gradient norms to digits_history.png.
"""

import sys

import numpy as np

import backpropx as bx


def main(epochs: int = 30, out: str = "digits.safetensors", plot: str = "digits_history.png") -> float:
    X, y = bx.load_digits()
    X_train, X_test, y_train, y_test = bx.train_test_split(X / 16.0, y, test_fraction=0.25, seed=0)
    net = bx.Network([bx.Dense(64, 128, activation="relu"),
                      bx.Dense(128, 10, activation="softmax")], seed=0)
    trainer = bx.Trainer(net, loss="cross_entropy", optimizer=bx.Adam(lr=3e-3), batch_size=32)
    history = trainer.fit(X_train, y_train, epochs=epochs, validation_data=(X_test, y_test), verbose=1)

    predicted = net.predict(X_test).argmax(axis=1)
    accuracy = float(np.mean(predicted == y_test))
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (y_test, predicted), 1)
    print(f"\nheld-out accuracy {accuracy:.2%}; confusion matrix (rows: true digit):")
    print(confusion)
    net.save(out)
    print(f"saved to {out}")
    try:
        history.plot(plot)
        print(f"learning curves and gradient norms: {plot}")
    except ImportError:
        print("install matplotlib (pip install matplotlib, or from a checkout pip install '.[plot]') for the learning-curve plot")
    return accuracy


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
