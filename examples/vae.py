"""A variational autoencoder on the 8x8 digits, in manual mode.

Model (Kingma & Welling 2014): a latent z ~ N(0, I) of ``--latent`` values;
a decoder network gives 64 logits ``a(z)``, and each pixel is Bernoulli with
mean ``sigmoid(a)``. The images are the shipped digits binarised at half
intensity (value >= 8 of 16), so the Bernoulli likelihood is a proper one
and the ELBO is a true lower bound on log p(x), in nats.

An encoder network maps an image to ``[mu, log_var]`` (2 x latent values):
q(z|x) = N(mu, diag(exp(log_var))). Per image the loss is the negative ELBO

    -ELBO = sum_pixels BCE(x, sigmoid(a(z))) + KL(q(z|x) || N(0, I)),
    z = mu + exp(log_var / 2) * eps,  eps ~ N(0, I)   (reparameterisation)

The sampling step sits between the two networks, so its gradient is
computed here in NumPy: ``dz = decoder.backward(da)`` is the gradient of
the reconstruction term with respect to z, and

    d/dmu      = dz + mu
    d/dlog_var = dz * eps * exp(log_var / 2) / 2 + (exp(log_var) - 1) / 2

go into ``encoder.backward``. The reconstruction term is computed from the
logits (``softplus(a) - x a``, gradient ``sigmoid(a) - x``), the numerically
stable form of BCE after a sigmoid, the same fusion torch's
BCEWithLogitsLoss makes; the decoder's sigmoid output is ``sigmoid(a)``.

Reported: the ELBO per held-out image (a quarter of the digits, never
trained on; averaged over ``--eval-draws`` draws of eps per image), split
into reconstruction and KL, next to the log-likelihood of the best model
with independent pixels (each pixel Bernoulli with its training-set mean),
which any useful latent-variable model must beat. With matplotlib installed
a grid of decoder means for z ~ N(0, I) is saved as a PNG (``--out``).

Run ``python examples/vae.py`` (full settings) or ``--quick`` (the tests').
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import backpropx as bx


def softplus(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a)


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # stable for any sign


def binarised_digits(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out images, (n, 64) of 0.0/1.0."""
    X, y = bx.load_digits()
    X_train, X_test, _, _ = bx.train_test_split((X >= 8).astype(np.float64), y, test_fraction=0.25, seed=seed)
    return X_train, X_test


class VAE:
    """An encoder and a decoder Network and the NumPy step between them."""

    def __init__(self, latent: int, hidden: int, seed: int, dtype: str = "float32") -> None:
        self.latent = latent
        self.encoder = bx.Network([bx.Dense(64, hidden, activation="relu"),
                                   bx.Dense(hidden, 2 * latent)], seed=seed, dtype=dtype)
        self.decoder = bx.Network([bx.Dense(latent, hidden, activation="relu"),
                                   bx.Dense(hidden, 64)], seed=seed + 1, dtype=dtype)

    def negative_elbo(self, x: np.ndarray, eps: np.ndarray, training: bool) -> tuple[np.ndarray, np.ndarray, dict]:
        """Per image: (reconstruction term, KL term, what the gradient needs)."""
        h = self.encoder.forward(x, training=training).astype(np.float64)
        mu, log_var = h[:, :self.latent], h[:, self.latent:]
        std = np.exp(0.5 * log_var)
        z = mu + std * eps
        logits = self.decoder.forward(z, training=training).astype(np.float64)
        reconstruction = np.sum(softplus(logits) - x * logits, axis=1)          # -log p(x|z)
        kl = 0.5 * np.sum(mu**2 + std**2 - 1.0 - log_var, axis=1)               # KL(q(z|x) || N(0, I))
        return reconstruction, kl, {"mu": mu, "std": std, "log_var": log_var, "logits": logits}

    def backward(self, x: np.ndarray, eps: np.ndarray) -> float:
        """Mean -ELBO of the batch for this draw of eps; leaves its gradient in
        both networks' ``named_gradients()`` (replacing what was there)."""
        n = len(x)
        reconstruction, kl, c = self.negative_elbo(x, eps, training=True)
        self.encoder.zero_grad()
        self.decoder.zero_grad()
        d_logits = (sigmoid(c["logits"]) - x) / n                      # d mean(softplus(a) - x a) / da
        dz = self.decoder.backward(d_logits).astype(np.float64)        # gradient of the reconstruction term wrt z
        d_mu = dz + c["mu"] / n                                        # z = mu + std * eps; KL: mu^2 / 2
        d_log_var = dz * eps * c["std"] * 0.5 + 0.5 * (c["std"] ** 2 - 1.0) / n
        self.encoder.backward(np.concatenate([d_mu, d_log_var], axis=1))
        return float(np.mean(reconstruction + kl))

    def train_step(self, x: np.ndarray, rng: np.random.Generator, opt_enc: bx.Optimizer,
                   opt_dec: bx.Optimizer) -> float:
        """One optimizer step of both networks on the batch mean of -ELBO; returns that mean."""
        loss = self.backward(x, rng.standard_normal((len(x), self.latent)))
        opt_enc.step(self.encoder)
        opt_dec.step(self.decoder)
        return loss

    def elbo(self, x: np.ndarray, rng: np.random.Generator, draws: int) -> tuple[float, float, float]:
        """(ELBO, reconstruction log-likelihood, KL), mean per image over `draws` draws of eps."""
        rec, kl = np.zeros(len(x)), np.zeros(len(x))
        for _ in range(draws):
            r, k, _ = self.negative_elbo(x, rng.standard_normal((len(x), self.latent)), training=False)
            rec += r / draws
            kl += k / draws
        return float(np.mean(-rec - kl)), float(np.mean(-rec)), float(np.mean(kl))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n decoder means sigmoid(a(z)) for z ~ N(0, I), (n, 64) in [0, 1]."""
        return sigmoid(self.decoder.predict(rng.standard_normal((n, self.latent))).astype(np.float64))


def independent_pixels_log_likelihood(X_train: np.ndarray, X_test: np.ndarray) -> float:
    """Mean log p(x) per held-out image under independent Bernoulli pixels fitted
    to the training set (add-one smoothing keeps every probability inside (0, 1))."""
    p = (X_train.sum(axis=0) + 1.0) / (len(X_train) + 2.0)
    return float(np.mean(X_test @ np.log(p) + (1.0 - X_test) @ np.log1p(-p)))


def save_grid(images: np.ndarray, path: str) -> bool:
    """Save (rows*cols, 64) images in [0, 1] as a square grid; False without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    side = int(round(np.sqrt(len(images))))
    tiles = np.pad(images.reshape(side, side, 8, 8), ((0, 0), (0, 0), (1, 1), (1, 1)))   # 1-pixel border
    grid = tiles.transpose(0, 2, 1, 3).reshape(side * 10, side * 10)
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title("VAE samples: decoder means for z ~ N(0, I)")
    fig.savefig(path, dpi=100)
    return True


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--latent", type=int, default=8, help="size of z")
    parser.add_argument("--hidden", type=int, default=128, help="units of the hidden layer of each network")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-draws", type=int, default=10, help="draws of eps per held-out image")
    parser.add_argument("--out", default="vae_samples.png", help="where to save the grid of samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of the C++ core (results are identical for any count; one is fastest "
                             "for networks this small)")
    parser.add_argument("--quick", action="store_true", help="the tests' settings: 60 epochs")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 60

    threads_before = bx.get_num_threads()
    bx.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        bx.set_num_threads(threads_before)


def run(args: argparse.Namespace) -> dict[str, float]:
    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    X_train, X_test = binarised_digits(args.seed)
    vae = VAE(args.latent, args.hidden, args.seed)
    opt_enc, opt_dec = bx.Adam(lr=args.lr), bx.Adam(lr=args.lr)
    log_every = max(args.epochs // 6, 1)
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(X_train))
        losses = [vae.train_step(X_train[order[i:i + args.batch]], rng, opt_enc, opt_dec)
                  for i in range(0, len(order), args.batch)]
        if epoch % log_every == 0:
            held_out = vae.elbo(X_test, rng, 1)[0]
            print(f"epoch {epoch:4d}: training -ELBO {np.mean(losses):.2f}, held-out ELBO {held_out:.2f} nats "
                  f"(one draw)")

    elbo, reconstruction, kl = vae.elbo(X_test, rng, args.eval_draws)
    baseline = independent_pixels_log_likelihood(X_train, X_test)
    print(f"held-out ELBO: {elbo:.2f} nats per image (reconstruction {reconstruction:.2f}, KL {kl:.2f}; "
          f"{len(X_test)} digits, {args.eval_draws} draws each)")
    print(f"independent pixels: {baseline:.2f} nats per image")
    if save_grid(vae.sample(rng, 100), args.out):
        print(f"samples saved to {args.out}")
    else:
        print("install matplotlib (pip install matplotlib, or from a checkout pip install '.[plot]') for the grid of samples")
    print(f"trained in {time.perf_counter() - start:.1f} s")
    return {"elbo": elbo, "reconstruction": reconstruction, "kl": kl, "independent_pixels": baseline}


if __name__ == "__main__":
    main()
