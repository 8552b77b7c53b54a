"""REINFORCE with a learned baseline balances a pole (CartPole), in manual mode.

The environment is CartPole written here in NumPy: the dynamics of Barto,
Sutton & Anderson (1983) with the constants, Euler integration, start
distribution (every state value uniform in [-0.05, 0.05]) and episode rules
of gymnasium's CartPole-v1: reward 1 per step, including the last; the
episode terminates when the pole leaves +-12 degrees or the cart leaves
+-2.4 m, and is cut off after 500 steps. Many episodes run side by side as
rows of one array, so one network call serves them all at each time step.

The policy network maps a state to two logits (push left, push right);
actions are drawn from their softmax. REINFORCE (Williams 1992) with a
baseline: for each step t of each episode, with discounted return-to-go
``G_t = sum_k gamma^k r_{t+k}``, the policy loss is

    L = -mean_t A_t log pi(a_t | s_t),   A_t = G_t - V(s_t)

and its gradient with respect to the logits is ``-A_t (onehot(a_t) -
softmax(logits_t)) / N``, which ``policy.backward`` takes into every weight.
The baseline V is a second network (a learned value function, not a running
average), fitted to G_t by mean squared error in manual mode too. The
advantages are normalised over each batch of episodes (zero mean, unit
variance), a common variance reduction. Episodes cut off at 500 steps are
treated as ending there.

Reported: the average return over 100 consecutive evaluation episodes, each
from its own start state (a seed stream never used in training), with the
policy sampled as in training and with its greedy action; the classic
"solved" bar of CartPole is an average of 195 (v0); v1's cap is 500.

Run ``python examples/policy_gradient.py`` (full settings) or ``--quick``
(the tests').
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import backpropx as bx


class CartPole:
    """``n`` CartPole-v1 episodes at once; states (n, 4): x, x_dot, theta, theta_dot."""

    gravity, mass_cart, mass_pole, half_length = 9.8, 1.0, 0.1, 0.5
    force_mag, tau = 10.0, 0.02
    theta_limit, x_limit, max_steps = 12 * 2 * np.pi / 360, 2.4, 500

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.state = rng.uniform(-0.05, 0.05, size=(n, 4))
        self.done = np.zeros(n, dtype=bool)
        self.steps = 0

    def step(self, action: np.ndarray) -> np.ndarray:
        """Push every running episode (action 1: right, 0: left); returns the
        rewards (1 for each episode that was running) and updates ``done``."""
        x, x_dot, theta, theta_dot = self.state.T
        force = np.where(action == 1, self.force_mag, -self.force_mag)
        cos, sin = np.cos(theta), np.sin(theta)
        total_mass = self.mass_cart + self.mass_pole
        pole_ml = self.mass_pole * self.half_length
        temp = (force + pole_ml * theta_dot**2 * sin) / total_mass
        theta_acc = (self.gravity * sin - cos * temp) / (
            self.half_length * (4.0 / 3.0 - self.mass_pole * cos**2 / total_mass))
        x_acc = temp - pole_ml * theta_acc * cos / total_mass
        new = np.stack([x + self.tau * x_dot, x_dot + self.tau * x_acc,
                        theta + self.tau * theta_dot, theta_dot + self.tau * theta_acc], axis=1)
        running = ~self.done
        self.state = np.where(running[:, None], new, self.state)
        self.steps += 1
        x, theta = self.state[:, 0], self.state[:, 2]
        fallen = (np.abs(x) > self.x_limit) | (np.abs(theta) > self.theta_limit)
        self.done = self.done | fallen | (self.steps >= self.max_steps)
        return running.astype(np.float64)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def rollout(policy: bx.Network, n: int, rng: np.random.Generator, greedy: bool = False):
    """Run n episodes to their end. Returns the visited states (T, n, 4), the
    actions and rewards (T, n), and each episode's return (n,)."""
    env = CartPole(n, rng)
    states, actions, rewards = [], [], []
    while not env.done.all():
        probs = softmax(policy.predict(env.state).astype(np.float64))
        if greedy:
            action = probs.argmax(axis=1)
        else:
            action = (rng.random(n) < probs[:, 1]).astype(np.int64)
        states.append(env.state)
        actions.append(action)
        rewards.append(env.step(action))
    rewards = np.array(rewards)
    return np.array(states), np.array(actions), rewards, rewards.sum(axis=0)


def returns_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """(T, n): G_t = r_t + gamma G_{t+1}, zero after an episode's end."""
    out = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1])
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def train(iterations: int, episodes: int, hidden: int, lr: float, gamma: float, seed: int,
          log_every: int = 0) -> bx.Network:
    rng = np.random.default_rng(seed)
    policy = bx.Network([bx.Dense(4, hidden, activation="relu"), bx.Dense(hidden, 2)], seed=seed)
    value = bx.Network([bx.Dense(4, hidden, activation="relu"), bx.Dense(hidden, 1)], seed=seed + 1)
    opt_policy, opt_value = bx.Adam(lr=lr), bx.Adam(lr=lr)
    value_scale = 1.0 - gamma          # V learns (1 - gamma) G, a number in [0, 1]
    for it in range(1, iterations + 1):
        states, actions, rewards, episode_returns = rollout(policy, episodes, rng)
        alive = rewards > 0                                  # the steps episodes actually took
        s, a = states[alive], actions[alive]
        G = returns_to_go(rewards, gamma)[alive]

        # Baseline: one MSE step of the value network towards the returns.
        v = value.forward(s, training=True)[:, 0].astype(np.float64)
        value.zero_grad()
        value.backward((2.0 * (v - value_scale * G) / len(G))[:, None])
        opt_value.step(value)

        # Policy: the REINFORCE gradient through the log-softmax of the logits.
        advantage = G - v / value_scale
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        logits = policy.forward(s, training=True).astype(np.float64)
        onehot = np.eye(2)[a]
        policy.zero_grad()
        policy.backward(-advantage[:, None] * (onehot - softmax(logits)) / len(G))
        opt_policy.step(policy)

        if log_every and it % log_every == 0:
            print(f"iteration {it:4d}: mean training return {episode_returns.mean():6.1f} "
                  f"({len(G):,} steps)")
    return policy


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=150, help="policy updates")
    parser.add_argument("--episodes", type=int, default=16, help="episodes per update")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units of the policy and value networks")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of the C++ core (results are identical for any count; one is fastest "
                             "for networks this small)")
    parser.add_argument("--quick", action="store_true", help="the tests' settings: 75 updates")
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations = 75

    threads_before = bx.get_num_threads()
    bx.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        bx.set_num_threads(threads_before)


def run(args: argparse.Namespace) -> dict[str, float]:
    start = time.perf_counter()
    policy = train(args.iterations, args.episodes, args.hidden, args.lr, args.gamma, args.seed,
                   log_every=max(args.iterations // 10, 1))
    trained = time.perf_counter() - start
    eval_rng = np.random.default_rng([args.seed, 1])   # start states never seen in training
    sampled = rollout(policy, args.eval_episodes, eval_rng)[3]
    greedy = rollout(policy, args.eval_episodes, eval_rng, greedy=True)[3]
    print(f"average return over {args.eval_episodes} evaluation episodes: {sampled.mean():.1f} "
          f"(sampled actions; min {sampled.min():.0f}), {greedy.mean():.1f} (greedy; min {greedy.min():.0f}); "
          f"cap 500, solved at 195")
    print(f"trained in {trained:.1f} s")
    return {"return": float(sampled.mean()), "greedy_return": float(greedy.mean())}


if __name__ == "__main__":
    main()
