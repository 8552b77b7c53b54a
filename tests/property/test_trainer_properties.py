"""Properties of Trainer: generated hyper-parameters, data in every form,
freezing schedules, checkpoint resumption and hostile checkpoint metadata."""

from __future__ import annotations

import json
import math
import pathlib
import tempfile

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from property_helpers import (
    DOCUMENTED,
    DTYPES,
    any_float,
    arrays,
    build,
    digest,
    examples,
    moderate_float,
    network_specs,
    rejected_or,
    shapes_around,
    targets,
    trainer_state,
)
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

import backpropx as bx

NUMERIC = ("float64", "float32", "float16", ">f8", "int64", "uint8", "bool")
JUNK = st.sampled_from([None, "1", [1], math.nan, math.inf, -math.inf, True, 2**70, -1, 0, -0.5, 1e308, 1j])
UNIT = st.floats(0, 0.999)
POSITIVE = st.floats(1e-6, 2.0)
OPTIMIZERS = {
    bx.SGD: {"lr": POSITIVE, "momentum": UNIT, "dampening": st.floats(0, 1), "weight_decay": st.floats(0, 0.1),
             "nesterov": st.booleans()},
    bx.Adam: {"lr": POSITIVE, "betas": st.tuples(UNIT, UNIT), "eps": st.floats(1e-12, 1e-2),
              "weight_decay": st.floats(0, 0.1), "amsgrad": st.booleans()},
    bx.AdamW: {"lr": POSITIVE, "betas": st.tuples(UNIT, UNIT), "weight_decay": st.floats(0, 0.5), "amsgrad": st.booleans()},
    bx.RMSprop: {"lr": POSITIVE, "alpha": UNIT, "eps": st.floats(1e-12, 1e-2), "momentum": UNIT,
                 "centered": st.booleans(), "weight_decay": st.floats(0, 0.1)},
    bx.Adagrad: {"lr": POSITIVE, "lr_decay": st.floats(0, 1), "initial_accumulator_value": st.floats(0, 1),
                 "eps": st.floats(1e-12, 1e-2)},
    bx.Rprop: {"lr": POSITIVE, "etas": st.tuples(st.floats(0.1, 0.99), st.floats(1.01, 2.0)),
               "step_sizes": st.tuples(st.floats(1e-8, 1e-3), st.floats(1.0, 50.0))},
}


@st.composite
def kwargs_of(draw, valid: dict[str, st.SearchStrategy]) -> dict:
    """Each keyword present or not; its value valid or junk."""
    out = {}
    for key, strategy in valid.items():
        if draw(st.booleans()):
            out[key] = draw(JUNK if draw(st.integers(0, 7)) == 0 else strategy)
    return out


TRAINER_ARGS = {"batch_size": st.integers(1, 40), "shuffle": st.booleans(), "seed": st.integers(0, 2**64 - 1),
                "clip_grad_norm": st.one_of(st.none(), POSITIVE), "clip_grad_value": st.one_of(st.none(), POSITIVE),
                "l2": st.floats(0, 0.1)}


def small_data(n: int = 24, c: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    return X, rng.integers(0, c, n)


def classifier(seed: int = 0, dtype: str = "float64", dropout: bool = True) -> bx.Network:
    layers = [bx.Dense(4, 6, activation="tanh")] + ([bx.Dropout(0.25)] if dropout else []) + \
             [bx.Dense(6, 3, activation="softmax")]
    return bx.Network(layers, seed=seed, dtype=dtype)


def assert_non_finite_error_is_clean(exc: FloatingPointError, trainer: bx.Trainer, before_epochs: int) -> None:
    """NonFiniteError mid-fit: earlier updates stay, the network stays finite."""
    assert all(np.isfinite(p).all() for p in trainer.network.parameters())
    assert trainer.epochs_done == before_epochs + len(exc.history)


@examples(40)
@given(kind=st.sampled_from(sorted(OPTIMIZERS, key=lambda c: c.__name__)), data=st.data())
def test_hyper_parameters_are_validated_up_front_and_valid_ones_train(kind, data):
    opt_kwargs = data.draw(kwargs_of(OPTIMIZERS[kind]), label="optimizer")
    net = classifier()
    before = digest(net.state_dict())
    try:
        optimizer = kind(**opt_kwargs)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        return
    trainer_kwargs = data.draw(kwargs_of(TRAINER_ARGS), label="trainer")
    values = optimizer.hyperparameters
    accepted, trainer = rejected_or(lambda: bx.Trainer(net, optimizer=optimizer, **trainer_kwargs),
                                    lambda: (digest(net.state_dict()), optimizer.hyperparameters))
    assert optimizer.hyperparameters == values and digest(net.state_dict()) == before
    if not accepted:
        return
    X, y = small_data()
    try:
        history = trainer.fit(X, y, epochs=2, verbose=0, warn_gradients=False)
    except FloatingPointError as exc:
        assert_non_finite_error_is_clean(exc, trainer, 0)
        return
    assert trainer.epochs_done == 2 and len(history) == 2
    assert all(math.isfinite(v) for v in history["loss"])
    assert all(np.isfinite(p).all() for p in trainer.network.parameters())


def canonical(a, dtype=None):
    return None if a is None else np.ascontiguousarray(np.asarray(a), dtype=dtype)


@examples(40)
@given(spec=network_specs(max_depth=2, max_width=4, last=("softmax", "sigmoid", "identity")),
       loss=st.sampled_from(["cross_entropy", "mse", "binary_cross_entropy"]), data=st.data())
def test_fit_trains_or_rejects_data_without_changing_anything(spec, loss, data):
    if loss == "binary_cross_entropy":  # its input must be probabilities
        spec["layers"][-1]["activation"] = "sigmoid"
    net, twin_net = build(spec), build(spec)
    batch = data.draw(st.integers(1, 7), label="batch_size")
    trainer = bx.Trainer(net, loss=loss, optimizer=bx.SGD(lr=0.05, momentum=0.5), batch_size=batch, seed=3)
    twin = bx.Trainer(twin_net, loss=loss, optimizer=bx.SGD(lr=0.05, momentum=0.5), batch_size=batch, seed=3)
    n = data.draw(st.sampled_from([1, 2, 5, 9, 0]), label="n")
    shape = (n, *net.input_shape) if data.draw(st.integers(0, 3)) else data.draw(shapes_around(n, net.input_shape))
    X, _, _, _ = data.draw(arrays(shape, values=st.one_of(moderate_float(), moderate_float(), any_float()),
                                  dtypes=NUMERIC if data.draw(st.integers(0, 3)) else DTYPES), label="X")
    y, _ = data.draw(targets(loss, n, net.out_features), label="y")
    w = data.draw(st.sampled_from([None, None, "ones", "ramp", "negative"]), label="sample_weight")
    w = {None: None, "ones": np.ones(n), "ramp": np.arange(n) % 3, "negative": -np.ones(n)}[w]
    epochs = data.draw(st.integers(0, 2), label="epochs")
    split = data.draw(st.sampled_from([0.0, 0.0, 0.3, 0.99, 1.0, -0.1]), label="validation_split")
    val = (X, y) if data.draw(st.booleans(), label="validation_data") else None
    call = dict(epochs=epochs, verbose=0, sample_weight=w, validation_split=split, validation_data=val,
                warn_gradients=False)
    try:
        accepted, history = rejected_or(lambda: trainer.fit(X, y, **call), lambda: trainer_state(trainer),
                                        allowed=(ValueError, TypeError, MemoryError))
    except FloatingPointError as exc:  # overflow during training: documented, not a rejection
        assert_non_finite_error_is_clean(exc, trainer, 0)
        return
    if not accepted:
        return
    assert trainer.epochs_done == epochs and len(history) == epochs
    assert all(np.isfinite(p).all() for p in net.parameters())
    # The same run on canonical (C-contiguous, network dtype) data: the same bits.
    Xc = canonical(X, net.dtype)
    yc = np.asarray(y)
    twin_call = {**call, "sample_weight": canonical(w),
                 "validation_data": None if val is None else (Xc, yc)}
    twin_history = twin.fit(Xc, yc, **twin_call)
    assert digest(net.state_dict()) == digest(twin_net.state_dict())
    for key, values in history.history.items():
        if key != "time":
            np.testing.assert_array_equal(values, twin_history.history[key], err_msg=key)


@examples(40)
@given(loss=st.sampled_from(["cross_entropy", "mse"]), data=st.data())
def test_evaluate_is_the_loss_of_loss_and_gradients_or_a_clean_error(loss, data):
    net = classifier(dropout=True)
    trainer = bx.Trainer(net, loss=loss)
    n = data.draw(st.sampled_from([1, 3, 6, 0]), label="n")
    X, _, _, _ = data.draw(arrays(data.draw(shapes_around(n, 4)), values=st.one_of(moderate_float(), any_float()),
                                  dtypes=NUMERIC), label="X")
    y, _ = data.draw(targets(loss, n, 3), label="y")
    accepted, metrics = rejected_or(lambda: trainer.evaluate(X, y), lambda: trainer_state(trainer))
    if not accepted:
        return
    assert math.isfinite(metrics["loss"])
    if loss == "cross_entropy":
        assert 0.0 <= metrics["accuracy"] <= 1.0
    value, _ = net.loss_and_gradients(X, y, loss=loss)
    assert abs(metrics["loss"] - value) <= 1e-12 * max(1.0, abs(value))


@examples(30)
@given(toggles=st.lists(st.tuples(st.integers(1, 6), st.integers(0, 2), st.booleans()), max_size=4),
       batch=st.integers(2, 8))
def test_freezing_from_a_callback_equals_manual_mode_batch_for_batch(toggles, batch):
    X, y = small_data(24)
    net = bx.Network([bx.Dense(4, 5, activation="relu"), bx.Dense(5, 5, activation="tanh"),
                      bx.Dense(5, 3, activation="softmax")], seed=1, dtype="float64")
    twin = bx.Network([bx.Dense(4, 5, activation="relu"), bx.Dense(5, 5, activation="tanh"),
                       bx.Dense(5, 3, activation="softmax")], seed=1, dtype="float64")

    class Toggle(bx.Callback):
        every = 1

        def on_batch_end(self, b, logs):
            for at, k, flag in toggles:
                if at == b:
                    self.trainer.network.layers[k].trainable = flag

    bx.Trainer(net, optimizer=bx.SGD(lr=0.1, momentum=0.9), batch_size=batch, shuffle=False).fit(
        X, y, verbose=0, callbacks=[Toggle()], warn_gradients=False)
    # Manual mode: gradients, torch's SGD rule on the layers trainable now
    # (state restarts when that set changes), then the toggles.
    params = dict(twin.named_parameters())
    buf: dict[str, np.ndarray] = {}
    for b, start in enumerate(range(0, len(X), batch), start=1):
        _, grads = twin.loss_and_gradients(X[start:start + batch], y[start:start + batch])
        live = sorted(f"{k}.{p}" for k, layer in enumerate(twin.layers) if layer.trainable for p in ("weight", "bias"))
        if sorted(buf) != live:
            buf = {}
        for name in live:
            buf[name] = grads[name].copy() if name not in buf else 0.9 * buf[name] + grads[name]
            params[name][...] -= 0.1 * buf[name]
        for at, k, flag in toggles:
            if at == b:
                twin.layers[k].trainable = flag
    for key, value in net.state_dict().items():
        np.testing.assert_allclose(value, twin.state_dict()[key], rtol=1e-11, atol=1e-13, err_msg=key)


@examples(25)
@given(kind=st.sampled_from(sorted(OPTIMIZERS, key=lambda c: c.__name__)), first=st.integers(1, 2),
       more=st.integers(1, 2), batch=st.integers(1, 10), shuffle=st.booleans(),
       dtype=st.sampled_from(["float32", "float64"]), data=st.data())
def test_a_checkpoint_resumes_bit_for_bit(kind, first, more, batch, shuffle, dtype, data):
    kwargs = {k: data.draw(v, label=k) for k, v in OPTIMIZERS[kind].items() if data.draw(st.booleans())}
    kwargs["lr"] = 0.01
    try:
        kind(**kwargs)
    except ValueError:  # e.g. nesterov without momentum: refused up front, nothing to resume
        assume(False)
    X, y = small_data(20)

    def trainer():
        return bx.Trainer(classifier(seed=4, dtype=dtype), optimizer=kind(**kwargs), batch_size=batch,
                          shuffle=shuffle, seed=9)

    straight, interrupted = trainer(), trainer()
    try:
        straight.fit(X, y, epochs=first + more, verbose=0, warn_gradients=False)
    except FloatingPointError:
        return  # a diverging configuration has no continuation to compare
    interrupted.fit(X, y, epochs=first, verbose=0, warn_gradients=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "c.ckpt"
        interrupted.save_checkpoint(path)
        resumed = trainer()
        resumed.fit(X, y, epochs=first + more, verbose=0, resume_from=path, warn_gradients=False)
    assert digest(resumed.network.state_dict()) == digest(straight.network.state_dict())
    assert digest(resumed._opt_core.get_state()) == digest(straight._opt_core.get_state())
    assert resumed.history.history["loss"] == straight.history.history["loss"]


METADATA_KEYS = ("optimizer_steps", "epochs_done", "lr", "history", "callbacks", "layers", "batch_size", "dtype",
                 "loss", "optimizer", "format_version", "checkpoint")
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                       max_leaves=10)


@examples(60)
@given(key=st.sampled_from(METADATA_KEYS), data=st.data())
def test_a_checkpoint_with_any_metadata_loads_whole_or_changes_nothing(key, data):
    plausible = {"lr": st.floats(1e-6, 1.0).map(repr), "epochs_done": st.integers(0, 99).map(str),
                 "optimizer_steps": st.integers(0, 99).map(str), "callbacks": st.just("{}"),
                 "history": st.lists(st.floats(allow_nan=True), max_size=3).map(
                     lambda v: json.dumps({"epoch": list(range(1, len(v) + 1)), "history": {"loss": v}}))}
    value = data.draw(st.one_of(plausible.get(key, st.nothing()), st.text(max_size=20), JSONISH.map(json.dumps),
                                st.integers(-2**70, 2**70).map(str), st.floats().map(repr)), label="value")
    X, y = small_data(16)
    source = bx.Trainer(classifier(seed=1), optimizer=bx.Adam(lr=0.01), batch_size=4)
    stopper = bx.EarlyStopping(monitor="loss", patience=3)
    source.fit(X, y, epochs=1, verbose=0, callbacks=[stopper])
    target = bx.Trainer(classifier(seed=2), optimizer=bx.Adam(lr=0.01), batch_size=4)
    target_stopper = bx.EarlyStopping(monitor="loss", patience=3)
    target.fit(X[:8], y[:8], epochs=2, verbose=0, callbacks=[target_stopper])
    with tempfile.TemporaryDirectory() as tmp:
        good, bad = pathlib.Path(tmp) / "good.ckpt", pathlib.Path(tmp) / "bad.ckpt"
        source.save_checkpoint(good)
        data_bytes = good.read_bytes()
        header = json.loads(data_bytes[8:8 + int.from_bytes(data_bytes[:8], "little")])
        meta = {**header["__metadata__"], key: value}
        bad.write_bytes(st_save(st_load(data_bytes), metadata=meta))
        accepted, _ = rejected_or(lambda: target.load_checkpoint(bad, [target_stopper]),
                                  lambda: (trainer_state(target), json.dumps(target_stopper.state_dict())),
                                  allowed=DOCUMENTED + (OSError,))
    if accepted:  # then it is the source's state, with the edited entry's value
        assert digest(target.network.state_dict()) == digest(source.network.state_dict())
        if key == "lr":
            assert target.optimizer.lr == float(value)
        if key == "epochs_done":
            assert target.epochs_done == int(value)
