"""XOR with two inputs, one output and three layers (input, hidden, output).

XOR is not linearly separable, so it needs the hidden layer, and the hidden
layer can only be trained by propagating the output error back to it.
"""

import numpy as np

import backpropx as bx

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
y = np.array([[0], [1], [1], [0]], dtype=np.float64)


def main() -> np.ndarray:
    net = bx.Network([bx.Dense(2, 4, activation="tanh"),
                      bx.Dense(4, 1, activation="sigmoid")], seed=1, dtype="float64")
    trainer = bx.Trainer(net, loss="binary_cross_entropy", optimizer=bx.Adam(lr=0.05),
                         batch_size=4, shuffle=False)
    history = trainer.fit(X, y, epochs=500, verbose=0)
    out = net.predict(X)
    print(f"loss after {len(history)} epochs: {history['loss'][-1]:.5f}")
    for (a, b), o in zip(X.astype(int), out[:, 0]):
        print(f"  {a} xor {b} -> {o:.4f} ({int(o > 0.5)})")
    return out


if __name__ == "__main__":
    main()
