"""A GAN in manual mode: a generator learns a ring of 8 Gaussians.

The data are 2-D points from a mixture of 8 Gaussians with equal weights,
centres evenly spaced on a circle of radius 2, standard deviation 0.02 (the
toy problem of Metz et al. 2017, "Unrolled GANs", used by VEEGAN and PacGAN
to measure mode collapse).

The generator G maps noise z ~ N(0, I) to points; the discriminator D maps
points to a logit. Both are plain Networks trained in manual mode with the
non-saturating loss of Goodfellow et al. (2014):

- D step: minimise ``softplus(-D(x)) + softplus(D(G(z)))`` (binary cross-
  entropy on logits; gradient ``sigmoid(l) - target`` per logit).
- G step: minimise ``softplus(-D(G(z)))``. ``D.backward(dlogits)`` returns
  the gradient with respect to D's *input*, i.e. with respect to G's output,
  and ``G.backward`` of that updates G: the chain rule across two networks.
  D's parameter gradients from that pass are discarded (zero_grad before its
  own step); only G steps.

Both use Adam with beta1 = 0.5 (Radford et al. 2016, the usual GAN recipe),
here with a larger learning rate decayed linearly to zero, which finds the
modes quickly and then sharpens them.

A plain GAN collapses onto a few of the modes on this problem (with these
settings and ``--pack 1``: 3 of 8 after 10,000 steps). The discriminator
therefore judges ``--pack`` samples at once, concatenated into one input
(PacGAN, Lin et al. 2018): D then sees how diverse the generated samples
are, not only where each lies, so G is pushed to cover every mode. The packing is a reshape of the batch, and
so is the gradient that flows back to G. Measured at full settings for seeds
0, 1, 2: packs of 4 cover 8, 8, 8 modes; packs of 2 cover 8, 7, 8.

Figures (on ``--eval-samples`` generated points, 2,000 by default), with
sigma the mixture's standard deviation:

- a sample is *high quality* if it lies within 3 sigma of the nearest centre
  (the definition of VEEGAN, Srivastava et al. 2017);
- a mode is *covered* if at least a quarter of its fair share of the samples,
  ``eval_samples / 8 / 4``, are high-quality samples of that mode. Mode
  collapse shows as few covered modes; a blurry generator as a low share of
  high-quality samples.

Run ``python examples/gan.py`` (full settings) or ``--quick`` (the tests').
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import backpropx as bx

MODES = 8
RADIUS = 2.0
STD = 0.02


def centres() -> np.ndarray:
    """(8, 2): the mixture's means, evenly spaced on the circle."""
    angles = 2 * np.pi * np.arange(MODES) / MODES
    return RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample_data(rng: np.random.Generator, n: int) -> np.ndarray:
    """n points of the mixture, each mode with probability 1/8."""
    return centres()[rng.integers(0, MODES, n)] + STD * rng.standard_normal((n, 2))


def mode_figures(points: np.ndarray) -> tuple[int, float, np.ndarray]:
    """(modes covered, share of high-quality samples, high-quality count per mode)."""
    dist = np.linalg.norm(points[:, None, :] - centres()[None, :, :], axis=2)  # (n, 8)
    nearest = dist.argmin(axis=1)
    good = dist[np.arange(len(points)), nearest] <= 3 * STD
    per_mode = np.bincount(nearest[good], minlength=MODES)
    covered = int(np.sum(per_mode >= len(points) / MODES / 4))
    return covered, float(good.mean()), per_mode


def softplus(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a)


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # stable for any sign


def build(noise: int, hidden: int, pack: int, seed: int) -> tuple[bx.Network, bx.Network]:
    generator = bx.Network([bx.Dense(noise, hidden, activation="relu"),
                            bx.Dense(hidden, hidden, activation="relu"),
                            bx.Dense(hidden, 2)], seed=seed)
    discriminator = bx.Network([bx.Dense(2 * pack, hidden, activation="leaky_relu"),
                                bx.Dense(hidden, hidden, activation="leaky_relu"),
                                bx.Dense(hidden, 1)], seed=seed + 1)
    return generator, discriminator


def generate(G: bx.Network, rng: np.random.Generator, n: int) -> np.ndarray:
    """n points from the generator, (n, 2)."""
    return G.predict(rng.standard_normal((n, G.in_features)).astype(np.float32))


def train(steps: int, batch: int, noise: int, hidden: int, pack: int, lr: float, seed: int,
          log_every: int = 0) -> bx.Network:
    """G after `steps` steps; each step updates D on `batch` packed real and
    `batch` packed generated inputs, then G on `batch * pack` generated points."""
    rng = np.random.default_rng(seed)
    monitor_rng = np.random.default_rng([seed, 1])   # progress reports do not change the training draws
    G, D = build(noise, hidden, pack, seed)
    opt_g = bx.Adam(lr=lr, betas=(0.5, 0.999))
    opt_d = bx.Adam(lr=lr, betas=(0.5, 0.999))
    targets = np.concatenate([np.ones((batch, 1)), np.zeros((batch, 1))]).astype(np.float32)
    for step in range(1, steps + 1):
        # Linear decay to zero: large steps find the modes, small ones sharpen them.
        opt_g.lr = opt_d.lr = lr * (1 - (step - 1) / steps)
        # Discriminator: real points labelled 1, generated points 0, in one batch.
        fake = generate(G, rng, batch * pack)
        real = sample_data(rng, batch * pack).astype(np.float32)
        both = np.concatenate([real.reshape(batch, 2 * pack), fake.reshape(batch, 2 * pack)])
        logits = D.forward(both, training=True)
        D.zero_grad()
        D.backward((sigmoid(logits) - targets) / batch)   # d mean BCE / d logit, per half
        opt_d.step(D)

        # Generator: non-saturating loss -log D(G(z)); its gradient flows through D's input.
        z = rng.standard_normal((batch * pack, noise)).astype(np.float32)
        fake = G.forward(z, training=True)
        logits = D.forward(fake.reshape(batch, 2 * pack), training=True)
        d_fake = D.backward((sigmoid(logits) - 1.0) / batch)   # d softplus(-l) / dl = sigmoid(l) - 1
        G.zero_grad()
        G.backward(d_fake.reshape(batch * pack, 2))
        opt_g.step(G)

        if log_every and step % log_every == 0:
            covered, quality, _ = mode_figures(generate(G, monitor_rng, 2000))
            g_loss = float(np.mean(softplus(-logits)))
            print(f"step {step:6d}: generator loss {g_loss:.3f}, modes covered {covered}/{MODES}, "
                  f"high-quality samples {quality:.1%}")
    return G


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10000, help="training steps (one D and one G update each)")
    parser.add_argument("--batch", type=int, default=256, help="discriminator inputs per class and step")
    parser.add_argument("--noise", type=int, default=8, help="size of the noise vector z")
    parser.add_argument("--hidden", type=int, default=128, help="units per hidden layer of G and D")
    parser.add_argument("--pack", type=int, default=4, help="samples per discriminator input (PacGAN; 1: a plain GAN)")
    parser.add_argument("--lr", type=float, default=2e-3, help="initial learning rate of both Adams")
    parser.add_argument("--eval-samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of the C++ core (results are identical for any count; one is fastest "
                             "for networks this small)")
    parser.add_argument("--quick", action="store_true",
                        help="the tests' settings: 3,000 steps, 128 inputs of 2 packed samples, 64 units, lr 3e-3")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.batch, args.pack, args.hidden, args.lr = 3000, 128, 2, 64, 3e-3

    threads_before = bx.get_num_threads()
    bx.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        bx.set_num_threads(threads_before)


def run(args: argparse.Namespace) -> dict[str, float]:
    start = time.perf_counter()
    G = train(args.steps, args.batch, args.noise, args.hidden, args.pack, args.lr, args.seed,
              log_every=max(args.steps // 5, 1))
    points = generate(G, np.random.default_rng([args.seed, 2]), args.eval_samples)
    covered, quality, per_mode = mode_figures(points)
    print(f"modes covered: {covered}/{MODES} (high-quality samples per mode: {per_mode.tolist()})")
    print(f"high-quality samples: {quality:.1%} (within 3 std = {3 * STD:g} of a centre)")
    print(f"trained in {time.perf_counter() - start:.1f} s")
    return {"modes": covered, "quality": quality}


if __name__ == "__main__":
    main()
