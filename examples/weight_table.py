"""The tutorial's worked example: one weight, four inputs, gradient descent.

Inputs 0, 3, 9, 27 should map to 0, 6, 18, 54, i.e. output = 2 * input. The
network is a single weight without bias, started at w = 4. The script prints
the error table at w = 4, 3, 2 and then lets gradient descent find w = 2.
"""

import numpy as np

import backpropx as bx

X = np.array([[0.0], [3.0], [9.0], [27.0]])
desired = np.array([[0.0], [6.0], [18.0], [54.0]])


def error_table(net: bx.Network) -> None:
    out = net.predict(X)
    print(f"w = {net.layers[0].weight[0, 0]:g}")
    print("  input  desired  output  error  squared error")
    for x, d, o in zip(X[:, 0], desired[:, 0], out[:, 0]):
        print(f"  {x:5g}  {d:7g}  {o:6g}  {o - d:5g}  {(o - d) ** 2:13g}")
    print(f"  mean squared error: {np.mean((out - desired) ** 2):g}\n")


def main() -> float:
    net = bx.Network([bx.Dense(1, 1, bias=False)], dtype="float64")
    for w in (4.0, 3.0, 2.0):
        net.layers[0].weight[...] = w
        error_table(net)

    net.layers[0].weight[...] = 4.0
    # d(MSE)/dw = mean(2 (w x - t) x) = 2 (w - 2) mean(x^2) = 2 (w - 2) 204.75,
    # so lr below 1/409.5 converges; 1e-3 shrinks the error by ~0.59 per step.
    trainer = bx.Trainer(net, loss="mse", optimizer=bx.SGD(lr=1e-3), batch_size=4, shuffle=False)
    print("gradient descent on the mean squared error, lr = 1e-3:")
    for step in range(1, 41):
        history = trainer.fit(X, desired, epochs=1, verbose=0)
        if step in (1, 2, 3, 5, 10, 20, 40):
            print(f"  step {step:2d}: w = {net.layers[0].weight[0, 0]:.8f}, loss {history['loss'][-1]:.3g}")
    w = float(net.layers[0].weight[0, 0])
    print(f"final w = {w:.8f} (the answer is 2)")
    return w


if __name__ == "__main__":
    main()
