"""Fine-tuning: train a new head on top of frozen layers of a trained network.

A network is trained to recognise the digits 0-4. Its hidden layer is then
reused, frozen, under a new output layer that learns the digits 5-9. Building
a Network from layers of another network copies their weights, so the first
network is not changed by the second one's training.
"""

import numpy as np

import backpropx as bx


def main() -> float:
    X, y = bx.load_digits()
    X = X / 16.0
    low, high = y < 5, y >= 5

    base = bx.Network([bx.Dense(64, 64, activation="relu"),
                       bx.Dense(64, 5, activation="softmax")], seed=0)
    bx.Trainer(base, optimizer=bx.Adam(lr=3e-3), seed=0).fit(X[low], y[low], epochs=20, verbose=0)
    print(f"base network on digits 0-4: accuracy {np.mean(base.predict(X[low]).argmax(1) == y[low]):.2%}")

    hidden = base.layers[0]
    tuned = bx.Network([hidden, bx.Dense(64, 5, activation="softmax")], seed=1)
    tuned.layers[0].trainable = False  # the copied hidden layer stays as trained
    frozen_before = tuned.layers[0].weight.copy()

    X_train, X_test, y_train, y_test = bx.train_test_split(X[high], y[high] - 5, seed=0)
    trainer = bx.Trainer(tuned, optimizer=bx.Adam(lr=3e-3), seed=0)
    trainer.fit(X_train, y_train, epochs=20, verbose=0)
    accuracy = float(np.mean(tuned.predict(X_test).argmax(1) == y_test))
    print(f"new head on digits 5-9, hidden layer frozen: held-out accuracy {accuracy:.2%}")
    print(f"frozen layer unchanged: {np.array_equal(frozen_before, tuned.layers[0].weight)}; "
          f"base network untouched: {np.array_equal(hidden.weight, base.layers[0].weight)}")
    return accuracy


if __name__ == "__main__":
    main()
