"""The training toolkit around the C++ epoch loop: learning-rate schedules,
EarlyStopping, validation_split, Dropout, gradient clipping, frozen layers,
per-layer History metrics, gradient-health warnings, non-finite errors,
gradcheck, bit-exact checkpoint resume, callbacks, progress output and
Ctrl-C.

Expected values come from closed forms (torch's schedule formulas), from
NumPy recomputations of one full-batch step (clipping, gradient norms,
update ratios) or from a second, independent run (resume, interrupt,
validation_split). Tests marked xfail(strict=True) pin known bugs that need
a change outside the toolkit (C++ core or trainer.py); they fail loudly
once fixed, so the mark can go.
"""

from __future__ import annotations

import csv
import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import ELEMENTWISE, random_targets, randomize
from safetensors.numpy import load_file

import backpropx as bx


# ---- helpers -----------------------------------------------------------------
def blobs(n=48, d=5, c=3, seed=0, dtype=np.float64):
    """Separable-ish classification data: c Gaussian clusters in d dimensions."""
    rng = np.random.default_rng(seed)
    centers = 2.0 * rng.standard_normal((c, d))
    y = rng.integers(0, c, n)
    return (centers[y] + rng.standard_normal((n, d))).astype(dtype), y


def mlp(seed=0, dtype="float64", dropout=None, d=5, hidden=8, c=3):
    layers = [bx.Dense(d, hidden, activation="relu")]
    if dropout is not None:
        layers.append(bx.Dropout(dropout))
    layers.append(bx.Dense(hidden, c, activation="softmax"))
    return bx.Network(layers, seed=seed, dtype=dtype)


def same_weights(a, b) -> bool:
    """Bit-identical parameters; a and b are Networks or state dicts."""
    sa = a.state_dict() if isinstance(a, bx.Network) else a
    sb = b.state_dict() if isinstance(b, bx.Network) else b
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


def all_finite(net) -> bool:
    return all(np.isfinite(p).all() for p in net.parameters())


def trainer_state(tr: bx.Trainer) -> dict:
    """Everything a checkpoint restores, as copies (to check that nothing changed)."""
    return {"weights": tr.network.state_dict(),
            "opt": [b.copy() for b in tr._opt_core.get_state()],
            "steps": tr._opt_core.steps,
            "rng": list(tr._core.get_rng_state()),
            "epochs_done": tr.epochs_done,
            "lr": tr.optimizer.lr,
            "history": {k: list(v) for k, v in tr.history.history.items() if k != "time"}}


def assert_same_state(a: dict, b: dict) -> None:
    assert same_weights(a["weights"], b["weights"])
    assert len(a["opt"]) == len(b["opt"]) and all(np.array_equal(x, y) for x, y in zip(a["opt"], b["opt"]))
    assert (a["steps"], a["rng"], a["epochs_done"], a["lr"]) == (b["steps"], b["rng"], b["epochs_done"], b["lr"])
    assert a["history"] == b["history"]


def metrics_without_time(history: bx.History) -> dict:
    return {k: v for k, v in history.history.items() if k != "time"}


class Recorder(bx.Callback):
    """Records every hook call; optionally injects a fake metric per epoch."""

    def __init__(self, every=0, fake=None, name="fake"):
        super().__init__()
        self.every = every
        self.fake, self.name = fake, name
        self.calls: list[tuple] = []
        self.weights: list[dict] = []

    def on_train_begin(self, logs):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_end(self, batch, logs):
        self.calls.append(("batch", batch, dict(logs)))

    def on_epoch_end(self, epoch, logs):
        if self.fake is not None:
            logs[self.name] = self.fake[epoch - 1]
        self.calls.append(("epoch_end", epoch))
        self.weights.append(self.trainer.network.state_dict())

    def on_train_end(self, logs):
        self.calls.append(("train_end",))


# ---- learning-rate schedules ---------------------------------------------------
def closed_form(kind: str, base: float, e: int) -> float:
    """torch.optim.lr_scheduler's closed forms after e epochs."""
    if kind == "step":      # StepLR(step_size=3, gamma=0.5)
        return base * 0.5 ** (e // 3)
    if kind == "exp":       # ExponentialLR(gamma=0.8)
        return base * 0.8 ** e
    eta_min = 0.001         # CosineAnnealingLR(T_max=5, eta_min=0.001)
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / 5)) / 2


def make_schedule(kind: str):
    return {"step": lambda: bx.StepLR(3, gamma=0.5), "exp": lambda: bx.ExponentialLR(0.8),
            "cos": lambda: bx.CosineAnnealingLR(5, eta_min=0.001)}[kind]()


@pytest.mark.parametrize("kind", ["step", "exp", "cos"])
def test_schedule_rate_of_epoch_e_is_value_after_e_minus_1_epochs(kind):
    # One weight, y = 2x, full batch: each epoch is one SGD step with the
    # epoch's rate, so the weight trajectory shows which rate was used.
    X = np.array([[1.0], [2.0], [3.0]])
    t = 2 * X
    net = bx.Network([bx.Dense(1, 1, bias=False)], dtype="float64")
    net.layers[0].weight[...] = 4.0
    base, epochs = 0.02, 9
    rec = Recorder()
    trainer = bx.Trainer(net, loss="mse", optimizer=bx.SGD(lr=base), batch_size=3, shuffle=False)
    history = trainer.fit(X, t, epochs=epochs, verbose=0, callbacks=[make_schedule(kind), rec])

    rates = [closed_form(kind, base, e) for e in range(epochs)]
    assert history["lr"] == pytest.approx(rates, rel=1e-12, abs=0)
    w, expected = 4.0, []
    for lr in rates:
        w -= lr * 2 * (w - 2.0) * np.mean(X ** 2)  # d/dw mean((w x - 2x)^2)
        expected.append(w)
    got = [r["0.weight"][0, 0] for r in rec.weights]
    assert got == pytest.approx(expected, rel=1e-12, abs=0)
    # After fit the optimizer holds the rate of the next epoch.
    assert trainer.optimizer.lr == pytest.approx(closed_form(kind, base, epochs), rel=1e-12)


def test_schedule_continues_across_fit_calls():
    X, y = blobs()
    trainer = bx.Trainer(mlp(), optimizer=bx.SGD(lr=0.1), batch_size=16)
    sched = bx.StepLR(2, gamma=0.1)
    h1 = trainer.fit(X, y, epochs=3, verbose=0, callbacks=[sched])
    h2 = trainer.fit(X, y, epochs=2, verbose=0, callbacks=[sched])
    assert h1["lr"] + h2["lr"] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001], rel=1e-12)


def test_reduce_lr_on_plateau_patience_cooldown_min_lr():
    # Expected rates traced by hand with torch's algorithm (threshold_mode="abs",
    # threshold=0) and checked once against torch.optim.lr_scheduler.ReduceLROnPlateau.
    cb = bx.ReduceLROnPlateau(monitor="m", factor=0.5, patience=2, cooldown=1, min_lr=0.03, min_delta=0.0)
    stub = SimpleNamespace(optimizer=bx.SGD(lr=0.1))
    cb.set_trainer(stub)
    series = [5, 4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3]
    rates = []
    for epoch, value in enumerate(series, 1):
        cb.on_epoch_end(epoch, {"m": value})
        rates.append(stub.optimizer.lr)
    assert rates == pytest.approx([0.1] * 4 + [0.05] * 7 + [0.03] * 5, rel=1e-12)


def test_reduce_lr_on_plateau_min_delta_and_max_mode():
    cb = bx.ReduceLROnPlateau(monitor="val_accuracy", factor=0.1, patience=0, min_delta=0.05)
    stub = SimpleNamespace(optimizer=bx.SGD(lr=1.0))
    cb.set_trainer(stub)
    cb.on_epoch_end(1, {"val_accuracy": 0.5})   # improves on -inf
    cb.on_epoch_end(2, {"val_accuracy": 0.54})  # +0.04 is not more than min_delta: reduce
    assert stub.optimizer.lr == pytest.approx(0.1)
    cb.on_epoch_end(3, {"val_accuracy": 0.6})   # +0.1 improves ("acc" -> mode max)
    assert stub.optimizer.lr == pytest.approx(0.1)


def test_reduce_lr_on_plateau_in_fit_with_fake_metric():
    X, y = blobs()
    fake = Recorder(fake=[3.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    plateau = bx.ReduceLROnPlateau(monitor="fake", factor=0.5, patience=1)
    trainer = bx.Trainer(mlp(), optimizer=bx.SGD(lr=0.2), batch_size=16)
    history = trainer.fit(X, y, epochs=6, verbose=0, callbacks=[fake, plateau])
    # bad epochs 3, 4 -> reduce after 4; then 5, 6 -> reduce after 6
    assert history["lr"] == pytest.approx([0.2, 0.2, 0.2, 0.2, 0.1, 0.1], rel=1e-12)
    assert trainer.optimizer.lr == pytest.approx(0.05)


@pytest.mark.parametrize("make", [
    lambda: bx.StepLR(0), lambda: bx.StepLR(2.0), lambda: bx.StepLR(2, gamma=0), lambda: bx.ExponentialLR(-1.0),
    lambda: bx.CosineAnnealingLR(0), lambda: bx.CosineAnnealingLR(3, eta_min=-1.0),
    lambda: bx.ReduceLROnPlateau(factor=1.0), lambda: bx.ReduceLROnPlateau(factor=0.0),
    lambda: bx.ReduceLROnPlateau(patience=-1), lambda: bx.ReduceLROnPlateau(cooldown=True),
    lambda: bx.ReduceLROnPlateau(mode="lowest"), lambda: bx.ReduceLROnPlateau(min_delta=-1.0),
])
def test_schedule_arguments_are_validated(make):
    with pytest.raises(ValueError):
        make()


# ---- EarlyStopping -----------------------------------------------------------------
@pytest.mark.parametrize("patience", [0, 1, 3])
def test_early_stopping_stops_after_patience_epochs_without_improvement(patience):
    X, y = blobs()
    # min_delta so large that only the first epoch (vs +inf) counts as an improvement
    stop = bx.EarlyStopping(monitor="loss", patience=patience, min_delta=1e9)
    history = bx.Trainer(mlp(), batch_size=16).fit(X, y, epochs=10, verbose=0, callbacks=[stop])
    expected = 1 + max(patience, 1)  # Keras: patience 0 and 1 both stop at the first bad epoch
    assert len(history) == expected and history.epoch == list(range(1, expected + 1))
    assert stop.stopped_epoch == expected and stop.best_epoch == 1


def test_early_stopping_restores_best_epoch_exactly(tmp_path):
    X, y = blobs()
    fake = Recorder(fake=[5.0, 1.0, 3.0, 2.0, 4.0, 0.5])   # best at epoch 2, never beaten in 3 epochs
    stop = bx.EarlyStopping(monitor="fake", patience=3, restore_best_weights=True)
    best = bx.ModelCheckpoint(tmp_path / "best.safetensors", monitor="fake", save_best_only=True)
    net = mlp()
    history = bx.Trainer(net, optimizer=bx.SGD(lr=0.1), batch_size=16).fit(
        X, y, epochs=6, verbose=0, callbacks=[fake, best, stop])
    assert len(history) == 5 and stop.best_epoch == 2 and stop.stopped_epoch == 5
    assert not same_weights(fake.weights[1], fake.weights[4])   # training did move on
    assert same_weights(net, fake.weights[1])
    saved = load_file(tmp_path / "best.safetensors")
    assert same_weights(net, {k: v for k, v in saved.items() if k[0].isdigit()})


def test_early_stopping_without_restore_keeps_last_weights():
    X, y = blobs()
    fake = Recorder(fake=[1.0, 2.0, 3.0])
    net = mlp()
    bx.Trainer(net, batch_size=16).fit(X, y, epochs=3, verbose=0,
                                       callbacks=[fake, bx.EarlyStopping(monitor="fake", patience=2)])
    assert same_weights(net, fake.weights[-1])


def test_early_stopping_auto_mode_maximises_accuracy():
    stop = bx.EarlyStopping(monitor="val_accuracy", patience=0)
    stop.set_trainer(SimpleNamespace(stop_training=False, network=None))
    stop.on_epoch_end(1, {"val_accuracy": 0.5})
    stop.on_epoch_end(2, {"val_accuracy": 0.6})
    assert not stop.trainer.stop_training
    stop.on_epoch_end(3, {"val_accuracy": 0.55})
    assert stop.trainer.stop_training and stop.best_epoch == 2


def test_early_stopping_validation():
    with pytest.raises(ValueError, match="mode"):
        bx.EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="min_delta"):
        bx.EarlyStopping(min_delta=-0.1)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="patience"):
            bx.EarlyStopping(patience=bad)
    X, y = blobs()
    with pytest.raises(KeyError, match="validation_data"):  # val_loss without validation data
        bx.Trainer(mlp()).fit(X, y, epochs=1, verbose=0, callbacks=[bx.EarlyStopping()])


# ---- validation_split ----------------------------------------------------------------
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_validation_split_takes_the_last_rows_before_shuffling(loss):
    X, labels = blobs(n=40)
    y = labels if loss == "cross_entropy" else np.eye(3)[labels]
    n_val = 10  # floor(40 * 0.25)
    net_a, net_b = mlp(seed=3), mlp(seed=3)
    ha = bx.Trainer(net_a, loss=loss, batch_size=8, seed=1).fit(X, y, epochs=3, verbose=0, validation_split=0.25)
    hb = bx.Trainer(net_b, loss=loss, batch_size=8, seed=1).fit(
        X[:-n_val], y[:-n_val], epochs=3, verbose=0, validation_data=(X[-n_val:], y[-n_val:]))
    assert "val_loss" in ha.history
    assert metrics_without_time(ha) == metrics_without_time(hb)
    assert same_weights(net_a, net_b)


@pytest.mark.parametrize("split", [1.0, 1.5, -0.1])
def test_validation_split_out_of_range(split):
    X, y = blobs()
    with pytest.raises(ValueError, match="validation_split"):
        bx.Trainer(mlp()).fit(X, y, epochs=1, verbose=0, validation_split=split)


def test_validation_split_errors():
    X, y = blobs(n=10)
    trainer = bx.Trainer(mlp())
    before = trainer_state(trainer)
    with pytest.raises(ValueError, match="leaves 0 validation samples"):
        trainer.fit(X, y, epochs=1, verbose=0, validation_split=0.05)
    with pytest.raises(ValueError, match="not both"):
        trainer.fit(X, y, epochs=1, verbose=0, validation_split=0.2, validation_data=(X, y))
    with pytest.raises(TypeError):
        trainer.fit(X, y, epochs=1, verbose=0, validation_split="0.2")
    assert_same_state(trainer_state(trainer), before)


# ---- Dropout -------------------------------------------------------------------------
def test_dropout_is_identity_in_predict_evaluate_and_gradients():
    X, y = blobs()
    with_dropout = mlp(seed=4, dropout=0.5)
    without = bx.Network([bx.Dense(5, 8, activation="relu"), bx.Dense(8, 3, activation="softmax")], dtype="float64")
    sd = with_dropout.state_dict()
    without.load_state_dict({"0.weight": sd["0.weight"], "0.bias": sd["0.bias"],
                             "1.weight": sd["2.weight"], "1.bias": sd["2.bias"]})
    assert np.array_equal(with_dropout.predict(X), without.predict(X))
    ta, tb = bx.Trainer(with_dropout), bx.Trainer(without)
    assert ta.evaluate(X, y) == tb.evaluate(X, y)
    la, ga = with_dropout.loss_and_gradients(X, y)
    lb, gb = without.loss_and_gradients(X, y)
    assert la == lb and np.array_equal(ga["2.weight"], gb["1.weight"])


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_dropout_training_mask_is_zero_or_scaled(p):
    # Dropout(features=F) then a zero-initialised Dense(F, 1): the output is 0
    # whatever the mask, so with mse, target 1, one sample and SGD(lr=1) the
    # step is w = 2 * (x * mask): it shows the mask, element by element.
    F = 4000
    net = bx.Network([bx.Dropout(p, features=F), bx.Dense(F, 1, bias=False, init="zeros")], dtype="float64")
    x = np.random.default_rng(0).uniform(0.5, 1.5, (1, F))
    bx.Trainer(net, loss="mse", optimizer=bx.SGD(lr=1.0), batch_size=1).fit(x, np.ones((1, 1)), verbose=0)
    mask = net.layers[1].weight[0] / (2 * x[0])
    kept = mask != 0
    assert np.allclose(mask[kept], 1 / (1 - p), rtol=1e-12, atol=0)
    sigma = math.sqrt(p * (1 - p) / F)
    assert abs((~kept).mean() - p) < 5 * sigma


def test_dropout_runs_are_reproducible_per_seed_and_thread_count(restore_threads):
    X, y = blobs(n=64)

    def run(seed, threads):
        bx.set_num_threads(threads)
        net = mlp(dropout=0.5)
        bx.Trainer(net, batch_size=16, seed=seed).fit(X, y, epochs=3, verbose=0)
        return net

    a = run(seed=7, threads=1)
    assert same_weights(a, run(seed=7, threads=1))
    assert same_weights(a, run(seed=7, threads=2))
    assert not same_weights(a, run(seed=8, threads=1))


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, True, "0.5", None])
def test_dropout_probability_validation(p):
    with pytest.raises(ValueError, match="Dropout probability"):
        bx.Dropout(p)


def test_dropout_width():
    with pytest.raises(ValueError, match="features="):
        bx.Network([bx.Dropout(0.5), bx.Dense(4, 2)])
    with pytest.raises(ValueError, match="expects 3"):
        bx.Network([bx.Dense(2, 4), bx.Dropout(0.5, features=3)])
    net = bx.Network([bx.Dropout(0.1, features=4), bx.Dense(4, 2)])
    assert net.in_features == 4 and net.layers[0].out_features == 4
    assert repr(net.layers[0]) == "Dropout(p=0.1)"


def test_dropout_save_load_round_trip(tmp_path):
    X, y = blobs()
    net = mlp(dropout=0.3)
    bx.Trainer(net, batch_size=16).fit(X, y, epochs=2, verbose=0)
    net.save(tmp_path / "m.safetensors")
    back = bx.Network.load(tmp_path / "m.safetensors")
    assert isinstance(back.layers[1], bx.Dropout) and back.layers[1].p == 0.3
    assert same_weights(net, back) and np.array_equal(net.predict(X), back.predict(X))


# ---- gradient clipping ---------------------------------------------------------------
def clipped(grads: dict, value=None, norm=None) -> dict:
    """torch.nn.utils.clip_grad_value_ then clip_grad_norm_ on a dict of arrays."""
    g = {k: v.copy() for k, v in grads.items()}
    if value is not None:
        g = {k: np.clip(v, -value, value) for k, v in g.items()}
    if norm is not None:
        total = math.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in g.values()))
        coef = norm / (total + 1e-6)
        if coef < 1:
            g = {k: v * coef for k, v in g.items()}
    return g


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode", ["value", "norm", "both", "norm_inactive"])
def test_clipping_matches_one_reference_sgd_step(mode, dtype):
    X, y = blobs(n=24, dtype=dtype)
    net = mlp(seed=2, dtype=dtype)
    before = net.state_dict()
    _, grads = net.loss_and_gradients(X, y)
    flat = np.concatenate([g.ravel() for g in grads.values()]).astype(np.float64)
    value = float(np.median(np.abs(flat))) if mode in ("value", "both") else None
    norm = {"value": None, "norm": 0.3, "both": 0.1, "norm_inactive": 1e3}[mode] * np.linalg.norm(flat) \
        if mode != "value" else None
    expected = clipped(grads, value, norm)
    assert not all(np.array_equal(expected[k], grads[k]) for k in grads) or mode == "norm_inactive"

    trainer = bx.Trainer(net, optimizer=bx.SGD(lr=1.0), batch_size=24, shuffle=False,
                         clip_grad_value=value, clip_grad_norm=norm)
    trainer.fit(X, y, epochs=1, verbose=0, warn_gradients=False)
    after = net.state_dict()
    tol = 1e-12 if dtype == "float64" else 2e-6
    for k in grads:
        step = before[k].astype(np.float64) - after[k]
        scale = np.abs(expected[k]).max()
        assert np.abs(step - expected[k]).max() <= tol * max(scale, 1.0), k


def test_clip_norm_counts_trainable_layers_only():
    X, y = blobs(n=24)
    net = mlp(seed=2)
    net.layers[0].trainable = False
    before = net.state_dict()
    _, grads = net.loss_and_gradients(X, y)
    trainable = {k: v for k, v in grads.items() if k.startswith("1.")}
    norm = 0.2 * math.sqrt(sum(float(np.sum(v ** 2)) for v in trainable.values()))
    expected = clipped(trainable, norm=norm)
    bx.Trainer(net, optimizer=bx.SGD(lr=1.0), batch_size=24, clip_grad_norm=norm).fit(X, y, verbose=0)
    after = net.state_dict()
    assert np.array_equal(after["0.weight"], before["0.weight"])
    for k, g in expected.items():
        assert np.abs(before[k] - after[k] - g).max() <= 1e-12


@pytest.mark.parametrize("name", ["clip_grad_norm", "clip_grad_value"])
@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1.0, ValueError), (math.nan, ValueError),
                                        (math.inf, ValueError), ("1", TypeError), (True, TypeError)])
def test_clipping_arguments_are_validated(name, bad, error):
    with pytest.raises(error, match=name):
        bx.Trainer(mlp(), **{name: bad})


# ---- frozen layers and fine-tuning -----------------------------------------------------
def test_frozen_layer_is_not_updated_and_has_no_optimizer_state():
    X, y = blobs()
    net = mlp()
    net.layers[0].trainable = False
    frozen = net.layers[0].weight.copy(), net.layers[0].bias.copy()
    trainer = bx.Trainer(net, optimizer=bx.Adam(lr=0.01), batch_size=16)
    history = trainer.fit(X, y, epochs=2, verbose=0)
    assert np.array_equal(net.layers[0].weight, frozen[0]) and np.array_equal(net.layers[0].bias, frozen[1])
    assert trainer._opt_core.state_names() == ["exp_avg", "exp_avg_sq"]
    assert [b.size for b in trainer._opt_core.get_state()] == [net.layers[1].num_params()] * 2
    assert "grad_norm/0" not in history.history and "grad_norm/1" in history.history


def test_unfreezing_restarts_optimizer_state():
    X, y = blobs(n=16)
    net = mlp(seed=5)
    net.layers[0].trainable = False
    trainer = bx.Trainer(net, optimizer=bx.Adam(lr=0.01), batch_size=16, shuffle=False)
    trainer.fit(X, y, epochs=3, verbose=0)
    assert trainer._opt_core.steps == 3
    net.layers[0].trainable = True
    start = net.state_dict()
    trainer.fit(X, y, epochs=1, verbose=0)
    assert [b.size for b in trainer._opt_core.get_state()] == [net.num_params] * 2
    assert trainer._opt_core.steps == 1
    # The same step as a fresh Adam from the same weights (bias correction at t = 1).
    fresh = mlp(seed=5)
    fresh.load_state_dict(start)
    bx.Trainer(fresh, optimizer=bx.Adam(lr=0.01), batch_size=16, shuffle=False).fit(X, y, verbose=0)
    assert same_weights(net, fresh)


def test_network_from_trained_layers_copies_weights():
    X, y = blobs()
    base = mlp()
    bx.Trainer(base, batch_size=16).fit(X, y, epochs=2, verbose=0)
    base.layers[0].trainable = False
    base_weights = base.state_dict()
    tuned = bx.Network([base.layers[0], bx.Dense(8, 2, activation="softmax")], seed=1, dtype="float64")
    assert tuned.layers[0] is not base.layers[0] and tuned.layers[0].trainable is False
    assert np.array_equal(tuned.layers[0].weight, base.layers[0].weight)
    assert not np.shares_memory(tuned.layers[0].weight, base.layers[0].weight)
    tuned.layers[0].trainable = True
    bx.Trainer(tuned, batch_size=16).fit(X, y % 2, epochs=2, verbose=0)
    assert not np.array_equal(tuned.layers[0].weight, base.layers[0].weight)
    assert same_weights(base, base_weights) and base.layers[0].trainable is False


# ---- History: per-layer metrics and plot ---------------------------------------------
def test_layer_metrics_match_a_numpy_recomputation():
    X, y = blobs(n=20)
    net = bx.Network([bx.Dense(5, 6, activation="tanh"), bx.Dropout(0.0), bx.Dense(6, 4, activation="relu"),
                      bx.Dense(4, 3, activation="softmax")], seed=0, dtype="float64")
    randomize(net, np.random.default_rng(1))
    net.layers[2].trainable = False
    before = net.state_dict()
    _, grads = net.loss_and_gradients(X, y)
    history = bx.Trainer(net, optimizer=bx.SGD(lr=0.1), batch_size=20).fit(X, y, epochs=1, verbose=0)
    after = net.state_dict()
    assert set(history.layer_metric("grad_norm")) == {0, 3} == set(history.layer_metric("update_ratio"))
    for k in (0, 3):
        names = [n for n in grads if n.startswith(f"{k}.")]
        norm = math.sqrt(sum(np.sum(grads[n] ** 2) for n in names))
        step = math.sqrt(sum(np.sum((after[n] - before[n]) ** 2) for n in names))
        weight = math.sqrt(sum(np.sum(before[n] ** 2) for n in names))
        assert history[f"grad_norm/{k}"][0] == pytest.approx(norm, rel=1e-12)
        assert history[f"update_ratio/{k}"][0] == pytest.approx(step / weight, rel=1e-10)
        assert history.layer_metric("grad_norm")[k] == history[f"grad_norm/{k}"]


def test_grad_norm_is_the_mean_over_batches():
    X, y = blobs(n=20)
    net = mlp(seed=3)
    expected = []
    probe = mlp(seed=3)
    for start in (0, 8, 16):  # batches of 8, 8, 4 with shuffle=False
        _, g = probe.loss_and_gradients(X[start:start + 8], y[start:start + 8])
        expected.append(math.sqrt(np.sum(g["0.weight"] ** 2) + np.sum(g["0.bias"] ** 2)))
        probe.load_state_dict({k: v - 0.05 * g[k] for k, v in probe.state_dict().items()})
    history = bx.Trainer(net, optimizer=bx.SGD(lr=0.05), batch_size=8, shuffle=False).fit(X, y, verbose=0)
    assert history["grad_norm/0"][0] == pytest.approx(np.mean(expected), rel=1e-12)


def test_history_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    X, y = blobs()
    history = bx.Trainer(mlp(), batch_size=16).fit(X, y, epochs=3, verbose=0, validation_data=(X, y))
    path = tmp_path / "curves.png"
    fig = history.plot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    assert len(fig.axes) == 3
    import matplotlib.pyplot as plt

    plt.close(fig)


# ---- GradientWarning ----------------------------------------------------------------------
def deep_sigmoid():
    layers = [bx.Dense(8, 8, activation="sigmoid", init="normal") for _ in range(5)]
    return bx.Network(layers + [bx.Dense(8, 3, init="normal")], seed=0, dtype="float64")


def test_vanishing_gradients_warn_once_per_fit_naming_the_layer():
    X, y = blobs(n=32, d=8)
    trainer = bx.Trainer(deep_sigmoid(), optimizer=bx.SGD(lr=0.01), batch_size=32)
    for first in (1, 4):  # once per fit, not once per epoch, and again in the next fit
        with pytest.warns(bx.GradientWarning) as record:
            trainer.fit(X, y, epochs=3, verbose=0)
        assert len(record) == 1
        message = str(record[0].message)
        assert "vanishing" in message and f"epoch {first}:" in message and "layer 0 (Dense(8, 8" in message


@pytest.mark.parametrize("case", ["lr", "inputs"])
def test_exploding_gradients_warn(case):
    X, y = blobs(n=32, d=8)
    # mean gradient norms above 1e4: in epoch 2 after a step of lr 1e5, in epoch 1 with inputs x 1e5
    lr, scale = (1e5, 1.0) if case == "lr" else (1e-3, 1e5)
    net = bx.Network([bx.Dense(8, 16, activation="relu"), bx.Dense(16, 3)], seed=0, dtype="float64")
    with pytest.warns(bx.GradientWarning, match="exploding") as record:
        bx.Trainer(net, optimizer=bx.SGD(lr=lr), batch_size=32).fit(X * scale, y, epochs=2, verbose=0)
    assert len(record) == 1 and "layer " in str(record[0].message)


def test_warn_gradients_false_is_silent():
    X, y = blobs(n=32, d=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bx.Trainer(deep_sigmoid(), optimizer=bx.SGD(lr=0.01)).fit(X, y, epochs=2, verbose=0, warn_gradients=False)
        net = bx.Network([bx.Dense(8, 16, activation="relu"), bx.Dense(16, 3)], seed=0, dtype="float64")
        bx.Trainer(net, optimizer=bx.SGD(lr=1e5)).fit(X, y, epochs=2, verbose=0, warn_gradients=False)


def test_gradient_warning_points_at_the_fit_call():
    X, y = blobs(n=32, d=8)
    with pytest.warns(bx.GradientWarning) as record:
        bx.Trainer(deep_sigmoid(), optimizer=bx.SGD(lr=0.01)).fit(X, y, epochs=1, verbose=0)
    assert record[0].filename == __file__


# ---- non-finite values ------------------------------------------------------------------
def regression_net():
    return bx.Network([bx.Dense(3, 4, activation="relu"), bx.Dense(4, 2)], seed=0)


def regression_data(n=16):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)).astype(np.float32), rng.standard_normal((n, 2)).astype(np.float32)


def test_overflowing_inputs_raise_before_any_update():
    X, y = regression_data()
    net = regression_net()
    before = net.state_dict()
    trainer = bx.Trainer(net, loss="mse", optimizer=bx.SGD(lr=0.1), batch_size=4, shuffle=False)
    with pytest.raises(bx.NonFiniteError) as info:
        trainer.fit(X * 1e30, y, epochs=2, verbose=0)
    exc = info.value
    assert isinstance(exc, FloatingPointError)
    assert "epoch 1" in str(exc) and "batch 1" in str(exc) and "layer 1" in str(exc)
    assert exc.epoch == 1 and isinstance(exc.history, bx.History) and len(exc.history) == 0
    assert same_weights(net, before) and trainer.epochs_done == 0


def test_huge_learning_rate_keeps_the_last_finite_weights():
    X, y = regression_data()
    net = regression_net()
    trainer = bx.Trainer(net, loss="mse", optimizer=bx.SGD(lr=1e30), batch_size=4, shuffle=False)
    with pytest.raises(bx.NonFiniteError, match="epoch 1: non-finite loss at batch 2"):
        trainer.fit(X, y, epochs=1, verbose=0)
    assert all_finite(net)
    one_batch = regression_net()  # the same run stopped after exactly the first batch
    bx.Trainer(one_batch, loss="mse", optimizer=bx.SGD(lr=1e30), batch_size=4, shuffle=False).fit(
        X[:4], y[:4], verbose=0, warn_gradients=False)
    assert same_weights(net, one_batch)


def test_non_finite_in_a_later_epoch_carries_the_history():
    X, y = regression_data()

    class Blowup(bx.Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 2:
                self.trainer.optimizer.lr = 1e30

    trainer = bx.Trainer(regression_net(), loss="mse", optimizer=bx.SGD(lr=0.01), batch_size=4)
    with pytest.raises(bx.NonFiniteError, match="epoch 3") as info:
        trainer.fit(X, y, epochs=5, verbose=0, callbacks=[Blowup()])
    assert info.value.epoch == 3 and info.value.history.epoch == [1, 2]
    assert info.value.history is trainer.history and trainer.epochs_done == 2
    assert all_finite(trainer.network)


def test_an_overflowing_update_keeps_the_last_finite_weights():
    X, y = regression_data()
    net = regression_net()
    trainer = bx.Trainer(net, loss="mse", optimizer=bx.SGD(lr=1e38), batch_size=4, shuffle=False)
    with pytest.raises(bx.NonFiniteError):
        trainer.fit(X, 1e4 * y, epochs=1, verbose=0)
    assert all_finite(net)


# ---- gradcheck -------------------------------------------------------------------------
LAST = {"mse": ("identity", "tanh"), "cross_entropy": ("softmax", "identity"), "binary_cross_entropy": ("sigmoid",)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", sorted(LAST))
def test_gradcheck_passes_for_every_activation(loss, dtype):
    rng = np.random.default_rng(11)
    hidden_activations = [a for a in bx.ACTIVATIONS if a != "softmax"]  # the core's list: new ones join
    assert set(ELEMENTWISE) <= set(hidden_activations)
    for hidden in hidden_activations:
        for last in LAST[loss]:
            net = bx.Network([bx.Dense(4, 5, activation=hidden),
                              bx.Dense(5, 3, activation=last, bias=hidden != "elu")], seed=1, dtype=dtype)
            randomize(net, rng)
            before = net.state_dict()
            X = rng.standard_normal((6, 4))
            y = random_targets(rng, loss, 6, 3)
            result = bx.gradcheck(net, X, y, loss=loss)
            assert result.passed and bool(result), (hidden, last, result)
            assert result.max_error < 1e-6 and result.checked == net.num_params
            assert same_weights(net, before) and net.dtype == np.dtype(dtype)


def test_gradcheck_ignores_dropout():
    X, y = blobs(n=10)
    result = bx.gradcheck(mlp(dropout=0.5), X, y)
    assert result.passed and set(result.errors) == {"0.weight", "0.bias", "2.weight", "2.bias"}


@pytest.mark.parametrize("corruption", ["scale", "transpose"])
def test_gradcheck_flags_a_broken_gradient(monkeypatch, corruption):
    rng = np.random.default_rng(2)
    net = bx.Network([bx.Dense(4, 5, activation="tanh"), bx.Dense(5, 5, activation="sigmoid"),
                      bx.Dense(5, 3, activation="softmax")], dtype="float64")
    randomize(net, rng)
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    assert bx.gradcheck(net, X, y).passed
    original = bx.Network.loss_and_gradients

    def broken(self, *args, **kwargs):
        value, grads = original(self, *args, **kwargs)
        g = grads["1.weight"]
        grads["1.weight"] = g * 1.0001 if corruption == "scale" else g.T.copy()
        return value, grads

    monkeypatch.setattr(bx.Network, "loss_and_gradients", broken)
    result = bx.gradcheck(net, X, y)
    assert not result.passed and not result and "FAILED" in repr(result)
    assert max(result.errors, key=result.errors.get) == "1.weight"
    assert result.max_error > (5e-5 if corruption == "scale" else 0.1) > result.tolerance
    assert result.errors["0.weight"] < 1e-6


def test_gradcheck_max_per_tensor_checks_a_seeded_subset():
    rng = np.random.default_rng(3)
    net = bx.Network([bx.Dense(4, 5, activation="gelu"), bx.Dense(5, 3)], dtype="float64")
    randomize(net, rng)
    X, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    result = bx.gradcheck(net, X, y, loss="mse", max_per_tensor=4)
    assert result.checked == 4 + 4 + 4 + 3  # weight 20, bias 5, weight 15, bias 3 elements
    assert set(result.errors) == {"0.weight", "0.bias", "1.weight", "1.bias"} and result.passed
    again = bx.gradcheck(net, X, y, loss="mse", max_per_tensor=4)
    assert again.errors == result.errors
    assert bx.gradcheck(net, X, y, loss="mse").checked == net.num_params


# ---- checkpoints ---------------------------------------------------------------------
OPTIMIZERS = {"adam": lambda: bx.Adam(lr=0.01), "sgd_momentum": lambda: bx.SGD(lr=0.05, momentum=0.9)}


def resume_setup(seed, opt, path, checkpoint_first):
    net = bx.Network([bx.Dense(5, 16, activation="relu"), bx.Dropout(0.3),
                      bx.Dense(16, 3, activation="softmax")], seed=seed)
    trainer = bx.Trainer(net, optimizer=OPTIMIZERS[opt](), batch_size=8, shuffle=True, seed=seed)
    stop = bx.EarlyStopping(monitor="val_loss", patience=50)
    others = [bx.StepLR(2, gamma=0.5), stop]
    checkpoint = bx.ModelCheckpoint(path)
    callbacks = [checkpoint, *others] if checkpoint_first else [*others, checkpoint]
    return net, trainer, callbacks, stop


@pytest.mark.parametrize("checkpoint_first", [False, True])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, opt, checkpoint_first):
    X, y = blobs(n=50, dtype=np.float32)
    Xv, yv = blobs(n=20, seed=1, dtype=np.float32)
    kw = {"validation_data": (Xv, yv), "verbose": 0}
    net, trainer, callbacks, stop = resume_setup(0, opt, tmp_path / "full.st", checkpoint_first)
    full = trainer.fit(X, y, epochs=6, callbacks=callbacks, **kw)

    _, first, callbacks1, _ = resume_setup(0, opt, tmp_path / "ck.st", checkpoint_first)
    first.fit(X, y, epochs=2, callbacks=callbacks1, **kw)   # ends on a StepLR boundary
    net2, second, callbacks2, stop2 = resume_setup(9, opt, tmp_path / "ck.st", checkpoint_first)
    resumed = second.fit(X, y, epochs=6, callbacks=callbacks2, resume_from=tmp_path / "ck.st", **kw)

    assert resumed.epoch == list(range(1, 7)) and resumed is second.history
    assert metrics_without_time(resumed) == metrics_without_time(full)
    assert_same_state(trainer_state(second), trainer_state(trainer))
    assert same_weights(net2, net) and second.epochs_done == 6
    if not checkpoint_first:  # see test_resume_with_callbacks_listed_after_the_checkpoint
        assert (stop2.tracker.best, stop2.wait, stop2.best_epoch) == (stop.tracker.best, stop.wait, stop.best_epoch)


def test_resume_past_the_target_runs_nothing(tmp_path):
    X, y = blobs()
    path = tmp_path / "ck.st"
    trainer = bx.Trainer(mlp(), batch_size=16)
    trainer.fit(X, y, epochs=3, verbose=0, callbacks=[bx.ModelCheckpoint(path)])
    other = bx.Trainer(mlp(seed=4), batch_size=16)
    history = other.fit(X, y, epochs=2, verbose=0, resume_from=path)
    assert history.epoch == [1, 2, 3] and other.epochs_done == 3
    assert same_weights(other.network, trainer.network)


def test_resume_with_callbacks_listed_after_the_checkpoint(tmp_path):
    X, y = blobs()

    def run(epochs, path, resume=None, seed=0):
        fake = Recorder(fake=[3.0, 2.0, 2.0, 2.0, 2.0, 2.0])
        stop = bx.EarlyStopping(monitor="fake", patience=10)
        trainer = bx.Trainer(mlp(seed=seed), optimizer=bx.SGD(lr=0.1), batch_size=16, seed=seed)
        cbs = [fake, bx.ModelCheckpoint(path), bx.ReduceLROnPlateau(monitor="fake", factor=0.5, patience=1), stop]
        history = trainer.fit(X, y, epochs=epochs, verbose=0, callbacks=cbs, resume_from=resume)
        return history["lr"], stop.wait, trainer.network.state_dict()

    full = run(6, tmp_path / "a.st")
    run(4, tmp_path / "b.st")
    resumed = run(6, tmp_path / "c.st", resume=tmp_path / "b.st", seed=3)
    assert resumed[:2] == full[:2] and same_weights(resumed[2], full[2])


@pytest.mark.parametrize("change", ["architecture", "optimizer", "batch_size", "loss", "dtype", "momentum",
                                    "frozen", "model_file"])
def test_mismatched_checkpoint_is_refused_and_changes_nothing(tmp_path, change):
    X, y = blobs(n=32)
    path = tmp_path / "ck.st"
    source = bx.Trainer(mlp(), optimizer=bx.SGD(lr=0.1, momentum=0.9), batch_size=8)
    source.fit(X, y, epochs=2, verbose=0)
    source.save_checkpoint(path)
    if change == "model_file":
        source.network.save(path)

    net = mlp(hidden=9 if change == "architecture" else 8, dtype="float32" if change == "dtype" else "float64")
    net.layers[0].trainable = change != "frozen"
    optimizer = {"optimizer": bx.Adam(), "momentum": bx.SGD(lr=0.1)}.get(change, bx.SGD(lr=0.1, momentum=0.9))
    target = bx.Trainer(net, optimizer=optimizer, batch_size=4 if change == "batch_size" else 8,
                        loss="mse" if change == "loss" else "cross_entropy")
    yt = np.eye(3)[y] if change == "loss" else y
    target.fit(X, yt, epochs=1, verbose=0)
    before = trainer_state(target)
    stop = bx.EarlyStopping(monitor="loss", patience=5)
    with pytest.raises(ValueError):
        target.fit(X, yt, epochs=4, verbose=0, resume_from=path, callbacks=[stop])
    assert_same_state(trainer_state(target), before)
    assert stop.wait == 0 and stop.tracker.best == math.inf


def test_checkpoint_file_loads_as_a_network(tmp_path):
    X, y = blobs()
    trainer = bx.Trainer(mlp(dropout=0.2), batch_size=16)
    trainer.fit(X, y, epochs=2, verbose=0)
    trainer.save_checkpoint(tmp_path / "ck.st")
    assert same_weights(bx.Network.load(tmp_path / "ck.st"), trainer.network)


# ---- callbacks -------------------------------------------------------------------------
@pytest.mark.parametrize("every, expected", [(1, list(range(1, 11))), (3, [3, 6, 9, 10]), (10, [10]),
                                             (25, [10])])
def test_on_batch_end_every_n_batches(every, expected):
    X, y = blobs(n=76)  # batches of 8: 9 full and one of 4
    rec = Recorder(every=every)
    bx.Trainer(mlp(), batch_size=8).fit(X, y, epochs=2, verbose=0, callbacks=[rec])
    batches = [c for c in rec.calls if c[0] == "batch"]
    assert [c[1] for c in batches] == expected * 2
    last = batches[-1][2]
    assert last["batches"] == 10 and last["samples"] == 76 and last["batch"] == 10 and math.isfinite(last["loss"])


def test_hooks_run_in_order():
    X, y = blobs()
    rec = Recorder()
    bx.Trainer(mlp(), batch_size=16).fit(X, y, epochs=2, verbose=0, callbacks=[rec])
    assert rec.calls == [("train_begin",), ("epoch_begin", 1), ("epoch_end", 1), ("epoch_begin", 2),
                         ("epoch_end", 2), ("train_end",)]


@pytest.mark.parametrize("hook", ["on_epoch_end", "on_batch_end"])
def test_stop_training_from_a_callback_ends_after_that_epoch(hook):
    X, y = blobs()

    class Stop(bx.Callback):
        every = 1

        def on_epoch_end(self, epoch, logs):
            if hook == "on_epoch_end" and epoch == 2:
                self.trainer.stop_training = True

        def on_batch_end(self, batch, logs):
            if hook == "on_batch_end" and batch == 1 and self.trainer.epochs_done == 1:
                self.trainer.stop_training = True

    trainer = bx.Trainer(mlp(), batch_size=16)
    history = trainer.fit(X, y, epochs=5, verbose=0, callbacks=[Stop()])
    assert history.epoch == [1, 2] and trainer.epochs_done == 2
    assert len(trainer.fit(X, y, epochs=1, verbose=0)) == 1  # the flag does not outlive the fit


def test_csv_logger(tmp_path):
    X, y = blobs()
    path = tmp_path / "log.csv"
    trainer = bx.Trainer(mlp(), batch_size=16)
    history = trainer.fit(X, y, epochs=3, verbose=0, validation_data=(X, y), callbacks=[bx.CSVLogger(path)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "grad_norm/0"):
        assert [float(r[key]) for r in rows] == pytest.approx(history[key], rel=1e-12)
    assert path.read_text().count("epoch,") == 1

    trainer.fit(X, y, epochs=2, verbose=0, validation_data=(X, y), callbacks=[bx.CSVLogger(path, append=True)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    trainer.fit(X, y, epochs=1, verbose=0, callbacks=[bx.CSVLogger(path)])  # overwrites
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [6] and "val_loss" not in rows[0]


@pytest.mark.parametrize("bad", [object(), bx.EarlyStopping, lambda epoch: None, "EarlyStopping"])
def test_non_callback_objects_are_refused(bad):
    X, y = blobs()
    trainer = bx.Trainer(mlp())
    with pytest.raises(TypeError, match="Callback"):
        trainer.fit(X, y, verbose=0, callbacks=[bad])
    assert trainer.epochs_done == 0


# ---- progress output and Ctrl-C ------------------------------------------------------------
def test_verbose_0_prints_nothing(capsys):
    X, y = blobs()
    bx.Trainer(mlp(), batch_size=16).fit(X, y, epochs=3, verbose=0, validation_data=(X, y))
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_prints_one_line_per_epoch(capsys, verbose):
    X, y = blobs()
    bx.Trainer(mlp(), batch_size=16).fit(X, y, epochs=3, verbose=verbose, validation_data=(X, y))
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3 and err == ""
    for e, line in enumerate(lines, 1):
        assert line.startswith(f"epoch {e}/3 - loss ") and "val_accuracy" in line and "samples/s" in line


class InterruptAt(bx.Callback):
    every = 1

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)

    def on_batch_end(self, batch, logs):
        if (self.trainer.epochs_done + 1, batch) == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("verbose", [0, 2])
def test_keyboard_interrupt_returns_the_history(capsys, verbose):
    X, y = blobs(n=40)
    net = mlp(seed=6)
    trainer = bx.Trainer(net, optimizer=bx.Adam(lr=0.01), batch_size=4, shuffle=False)
    history = trainer.fit(X, y, epochs=3, verbose=verbose, callbacks=[InterruptAt(2, 3)])
    assert history.interrupted and history.epoch == [1] and trainer.epochs_done == 1
    out = capsys.readouterr().out
    assert ("interrupted during epoch 2" in out) == (verbose > 0)
    assert all_finite(net)
    # The same as one epoch plus exactly three more batches, without interruption.
    ref_net = mlp(seed=6)
    ref_trainer = bx.Trainer(ref_net, optimizer=bx.Adam(lr=0.01), batch_size=4, shuffle=False)
    ref_trainer.fit(X, y, epochs=1, verbose=0)
    ref_trainer.fit(X[:12], y[:12], epochs=1, verbose=0)
    assert same_weights(net, ref_net)
    state, ref_state = trainer._opt_core.get_state(), ref_trainer._opt_core.get_state()
    assert len(state) == 2 and all(np.array_equal(a, b) for a, b in zip(state, ref_state))
    # Training can go on afterwards.
    again = trainer.fit(X, y, epochs=1, verbose=0)
    assert not again.interrupted and again.epoch == [2]
