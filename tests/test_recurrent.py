"""Recurrent layers and embeddings: SimpleRNN, GRU, LSTM (bidirectional,
return_sequences, variable lengths) and Embedding, against PyTorch autograd
(float64, 1e-10 relative), the NumPy reference (a plain time loop), central
differences; padded sequences equal the same sequences alone; bit-identical
for 1 and 2 threads; through fit, save/load and checkpoints; bad input
refused before anything changes.

Tolerances: as tests/test_layer_kinds.py (rel_err: max abs difference over
the tensor's max magnitude). Float64 against torch or the reference:
1e-10 (measured: below 1e-15). Float32 against the float64 reference on the
same weights: 1e-4 (measured: ~3e-7; float32's exp/tanh are polynomial
approximations within 2 ulp). Central differences in float64, step 1e-6:
1e-6 (measured: ~1e-9).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import assert_close, assert_grads_close, rel_err

import backpropx as bx

try:
    import reference as ref
    from reference.embedding import embedding_backward, embedding_forward
    from reference.recurrent import recurrent_backward, recurrent_forward
except ImportError:  # pragma: no cover
    from tests import reference as ref
    from tests.reference.embedding import embedding_backward, embedding_forward
    from tests.reference.recurrent import recurrent_backward, recurrent_forward

try:
    import torch
except ImportError:  # the ASan run of .ci/run has no torch: the rest still runs there
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")

CLASSES = {"simple_rnn": bx.SimpleRNN, "gru": bx.GRU, "lstm": bx.LSTM}
TORCH = {"simple_rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
# (kind, nonlinearity): every cell
CELLS = [("simple_rnn", "tanh"), ("simple_rnn", "relu"), ("gru", None), ("lstm", None)]
CONFIGS = [(kind, act, bidir, seqs, lens) for (kind, act), bidir, seqs, lens
           in itertools.product(CELLS, (False, True), (False, True), (False, True))]
N, T, F, H = 4, 6, 3, 5
LENGTHS = np.array([6, 3, 1, 5])


def _layer(kind, act, bidir, seqs, *, F=F, H=H, bias=True):
    extra = {"nonlinearity": act} if act else {}
    return CLASSES[kind](F, H, bidirectional=bidir, return_sequences=seqs, bias=bias, **extra)


def _torch_name(name: str, k: int = 0) -> str:
    base = name.removesuffix("_reverse")
    return f"{base}_l{k}" + ("_reverse" if base != name else "")


def _torch_rnn(layer: bx.Layer):
    """A torch RNN module with the layer's weights, float64."""
    dtype = torch.float64
    extra = {"nonlinearity": layer.nonlinearity} if layer.kind == "simple_rnn" else {}
    rnn = getattr(torch.nn, TORCH[layer.kind])(layer.input_size, layer.hidden_size, bias=layer.use_bias,
                                               batch_first=True, bidirectional=layer.bidirectional,
                                               dtype=dtype, **extra)
    with torch.no_grad():
        for name in layer.param_names:
            getattr(rnn, _torch_name(name)).copy_(torch.from_numpy(np.array(getattr(layer, name))))
    return rnn


def _torch_run(rnn, x, lengths, sequences):
    """torch's output for the layer: packed when lengths are given."""
    T_ = x.shape[1]
    if lengths is not None:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), batch_first=True,
                                                         enforce_sorted=False)
        out, h = rnn(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T_)
    else:
        out, h = rnn(x)
    if sequences:
        return out
    h = h[0] if isinstance(h, tuple) else h
    return torch.cat(tuple(h), dim=-1)


def _randomize(net, rng):
    for _, p in net.named_parameters():
        p[...] = rng.uniform(-0.8, 0.8, p.shape)


# ---- against torch autograd ------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("kind,act,bidir,seqs,lens", CONFIGS)
def test_layer_matches_torch_autograd(kind, act, bidir, seqs, lens):
    rng = np.random.default_rng(hash((kind, act, bidir, seqs, lens)) % 2**32)
    layer = _layer(kind, act, bidir, seqs, bias=not (bidir and seqs and lens))
    net = bx.Network([layer], input_shape=(T, F), seed=1, dtype="float64")
    _randomize(net, rng)
    X = rng.standard_normal((N, T, F))
    lengths = LENGTHS if lens else None
    out = net.forward(X, training=True, lengths=lengths)
    dY = rng.standard_normal(out.shape)
    net.zero_grad()
    dX = net.backward(dY)

    rnn = _torch_rnn(layer)
    x = torch.tensor(X, requires_grad=True)
    tout = _torch_run(rnn, x, lengths, seqs)
    (tout * torch.from_numpy(dY)).sum().backward()
    assert_close(out, tout.detach().numpy(), 1e-10, "output")
    assert_close(dX, x.grad.numpy(), 1e-10, "input gradient")
    grads = {name.split(".", 1)[1]: g for name, g in net.named_gradients()}
    expected = {name: getattr(rnn, _torch_name(name)).grad.numpy() for name in layer.param_names}
    assert_grads_close(grads, expected, 1e-10)
    if lens and seqs:  # pad_packed_sequence: zero outputs at padded steps
        for i, n_i in enumerate(LENGTHS):
            assert not np.any(out[i, n_i:])


@needs_torch
def test_stacked_network_with_per_step_loss_matches_torch():
    """Embedding -> bidirectional GRU (sequences) -> LSTM (sequences) -> Dense over every
    step, cross-entropy per step with lengths (padded steps out of the mean), against the
    same torch model: loss and every gradient, float64."""
    rng = np.random.default_rng(5)
    V, E, T_ = 11, 4, 7
    lengths = np.array([7, 2, 5, 1, 7])
    net = bx.Network([bx.Embedding(V, E, padding_idx=0), bx.GRU(E, 3, bidirectional=True, return_sequences=True),
                      bx.LSTM(6, 4, return_sequences=True), bx.Dense(4, V)], input_shape=(T_,), seed=2,
                     dtype="float64")
    _randomize(net, rng)
    net.layers[0].weight[0] = 0
    X = rng.integers(1, V, size=(5, T_))
    X[:, 0] = 0  # the padding id at a valid step of every sample
    y = rng.integers(0, V, size=(5, T_))
    y[np.arange(T_)[None, :] >= lengths[:, None]] = -100  # torch's ignore_index; ignored here too
    loss, grads = net.loss_and_gradients(X, y, lengths=lengths)

    emb = torch.nn.Embedding(V, E, padding_idx=0, dtype=torch.float64)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(np.array(net.layers[0].weight)))
    gru, lstm = _torch_rnn(net.layers[1]), _torch_rnn(net.layers[2])
    lin = torch.nn.Linear(4, V, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(np.array(net.layers[3].weight)))
        lin.bias.copy_(torch.from_numpy(np.array(net.layers[3].bias)))
    h = emb(torch.from_numpy(X))
    h = _torch_run(gru, h, lengths, True)
    h = _torch_run(lstm, h, lengths, True)
    logits = lin(h)
    tloss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y).reshape(-1),
                                              ignore_index=-100)
    tloss.backward()
    assert abs(loss - tloss.item()) <= 1e-12 * abs(tloss.item())
    expected = {"0.weight": emb.weight.grad, "3.weight": lin.weight.grad, "3.bias": lin.bias.grad}
    for k, mod in ((1, gru), (2, lstm)):
        for name in net.layers[k].param_names:
            expected[f"{k}.{name}"] = getattr(mod, _torch_name(name)).grad
    assert_grads_close(grads, {k: v.numpy() for k, v in expected.items()}, 1e-10)
    assert not np.any(grads["0.weight"][0]) and np.any(expected["0.weight"].numpy()), "padding_idx: no gradient"
    unused = sorted(set(range(V)) - set(X[np.arange(T_)[None, :] < lengths[:, None]].tolist()))
    assert not np.any(grads["0.weight"][unused]), "rows of ids not in the batch are untouched"
    # accuracy and loss of evaluate count the real steps only
    trainer = bx.Trainer(net, batch_size=2)
    metrics = trainer.evaluate(X, y, lengths=lengths)
    assert metrics["loss"] == pytest.approx(loss, rel=1e-12)
    pred = net.predict(X, lengths=lengths).argmax(-1)
    real = np.arange(T_)[None, :] < lengths[:, None]
    assert metrics["accuracy"] == pytest.approx(np.mean(pred[real] == y[real]))


# ---- against the NumPy reference and central differences -----------------------------
def _reference(layer_obj, net, X, dY, lengths):
    params = {name.split(".", 1)[1]: np.array(p, dtype=np.float64) for name, p in net.named_parameters()}
    layer = dict(layer_obj._config(), params=params)
    out, cache = recurrent_forward(layer, X.astype(np.float64), lengths)
    dX, grads = recurrent_backward(layer, cache, dY.astype(np.float64))
    return out, dX, grads


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("kind,act,bidir,seqs,lens", CONFIGS[::3] + CONFIGS[1::5])
def test_layer_matches_reference(kind, act, bidir, seqs, lens, dtype, tol):
    rng = np.random.default_rng(len(kind) + 7 * bidir + 3 * seqs + lens)
    layer = _layer(kind, act, bidir, seqs, bias=not (kind == "gru" and bidir))
    net = bx.Network([layer], input_shape=(T, F), seed=3, dtype=dtype)
    _randomize(net, rng)
    X = rng.standard_normal((N, T, F)).astype(dtype)
    lengths = LENGTHS if lens else None
    out = net.forward(X, training=True, lengths=lengths)
    dY = rng.standard_normal(out.shape).astype(dtype)
    net.zero_grad()
    dX = net.backward(dY)
    r_out, r_dX, r_grads = _reference(layer, net, X, dY, lengths)
    assert_close(out, r_out, tol, "output")
    assert_close(dX, r_dX, tol, "input gradient")
    assert_grads_close({k.split(".", 1)[1]: g for k, g in net.named_gradients()}, r_grads, tol)


@pytest.mark.parametrize("kind,act", CELLS)
def test_backprop_matches_central_differences(kind, act):
    rng = np.random.default_rng(11)
    layer = _layer(kind, act, True, True, F=2, H=2)
    net = bx.Network([layer, bx.Dense(4, 2, activation="tanh")], input_shape=(3, 2), seed=4, dtype="float64")
    _randomize(net, rng)
    X = rng.standard_normal((3, 3, 2))
    lengths = np.array([3, 1, 2])
    dY = rng.standard_normal((3, 3, 2))
    net.zero_grad()
    net.forward(X, training=True, lengths=lengths)
    dX = net.backward(dY)
    grads = {k: np.array(g) for k, g in net.named_gradients()}

    def loss():
        return float(np.sum(net.predict(X, lengths=lengths) * dY))

    params = dict(net.named_parameters())
    params["input"] = X
    numeric = ref.central_difference_gradients(loss, params, eps=1e-6)
    assert_grads_close(dict(grads, input=dX), numeric, 1e-6, "backprop vs central differences")
    # the comparison can fail: a wrong sign in one gradient is caught
    with pytest.raises(AssertionError):
        assert_close(-grads["0.weight_hh_reverse"], numeric["0.weight_hh_reverse"], 1e-6)


def test_embedding_matches_reference():
    rng = np.random.default_rng(0)
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-6)):
        net = bx.Network([bx.Embedding(9, 4, padding_idx=-2), bx.Dense(4, 3, activation="tanh")],
                         input_shape=(2, 5), seed=0, dtype=dtype)
        assert net.layers[0].padding_idx == 7 and not np.any(net.layers[0].weight[7])
        X = rng.integers(0, 9, size=(6, 2, 5)).astype(np.int64)  # int arrays are accepted
        dY = rng.standard_normal((6, 2, 5, 3))
        net.forward(X, training=True)
        net.zero_grad()
        dX = net.backward(dY)
        assert not np.any(dX)
        layer = dict(net.layers[0]._config(), params={"weight": np.array(net.layers[0].weight, np.float64)})
        emb, idx = embedding_forward(layer, X.astype(np.float64))
        W, b = np.array(net.layers[1].weight, np.float64), np.array(net.layers[1].bias, np.float64)
        z = emb @ W.T + b
        dz = dY * (1 - np.tanh(z) ** 2)
        _, r = embedding_backward(layer, idx, dz @ W)
        assert_close(net.named_gradients()[0][1], r["weight"], tol, "embedding gradient")


# ---- variable lengths: padded equals alone -------------------------------------------
@pytest.mark.parametrize("kind,act", CELLS)
def test_padded_sequence_equals_the_sequence_alone(kind, act):
    """A sample of length 5 alone (T = 5) and padded to T = 9 with junk in a batch: the
    same outputs at its steps (zero after), the same per-step loss and gradients."""
    rng = np.random.default_rng(21)

    def build(steps):
        return bx.Network([_layer(kind, act, True, True, F=3, H=4), _layer(kind, act, True, True, F=8, H=3),
                           bx.Dense(6, 5)], input_shape=(steps, 3), seed=9, dtype="float64")

    long_net, short_net = build(9), build(5)
    short_net.load_state_dict(long_net.state_dict())
    x = rng.standard_normal((5, 3))
    labels = rng.integers(0, 5, size=5)
    X = rng.standard_normal((3, 9, 3)) * 50  # junk everywhere, large, in the padding too
    X[1, :5] = x
    lengths = np.array([9, 5, 2])
    y = rng.integers(0, 5, size=(3, 9))
    y[1, :5] = labels
    out_long = long_net.predict(X, lengths=lengths)
    out_short = short_net.predict(x[None])
    assert_close(out_long[1, :5], out_short[0], 1e-12, "outputs at the real steps")
    inner = bx.Network(long_net.layers[:2], input_shape=(9, 3), dtype="float64")
    assert not np.any(inner.predict(X, lengths=lengths)[1, 5:]), "recurrent outputs at padded steps are zero"

    # the sample alone in a batch of one, padded: same loss and gradients as unpadded
    loss_p, grads_p = long_net.loss_and_gradients(X[1:2], y[1:2], lengths=[5])
    loss_s, grads_s = short_net.loss_and_gradients(x[None], labels[None])
    assert loss_p == pytest.approx(loss_s, rel=1e-12)
    assert_grads_close(grads_p, grads_s, 1e-12)
    # and the padding's values never matter
    X2 = X.copy()
    X2[1, 5:] = -X2[1, 5:]
    X2[2, 2:] = 0
    loss2, grads2 = long_net.loss_and_gradients(X2, y, lengths=lengths)
    loss1, grads1 = long_net.loss_and_gradients(X, y, lengths=lengths)
    assert loss1 == loss2
    for key in grads1:
        np.testing.assert_array_equal(grads1[key], grads2[key])


def test_last_step_output_with_lengths_is_the_last_real_step():
    rng = np.random.default_rng(2)
    seq = bx.Network([bx.LSTM(2, 3, return_sequences=True)], input_shape=(6, 2), seed=1, dtype="float64")
    last = bx.Network([bx.LSTM(2, 3)], input_shape=(6, 2), seed=1, dtype="float64")
    X = rng.standard_normal((3, 6, 2))
    lengths = np.array([6, 4, 1])
    full, final = seq.predict(X, lengths=lengths), last.predict(X, lengths=lengths)
    for i, n_i in enumerate(lengths):
        np.testing.assert_array_equal(final[i], full[i, n_i - 1])


# ---- threads, fit, save/load, checkpoints ---------------------------------------------
def test_bit_identical_for_one_and_two_threads(restore_threads):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((96, 12, 20)).astype(np.float32)
    y = rng.integers(0, 7, size=96)
    lengths = rng.integers(1, 13, size=96)
    results = []
    for threads in (1, 2):
        bx.set_num_threads(threads)
        net = bx.Network([bx.GRU(20, 64, bidirectional=True, return_sequences=True), bx.LSTM(128, 96),
                          bx.Dense(96, 7)], input_shape=(12, 20), seed=5)
        out = net.forward(X, training=True, lengths=lengths)
        dX = net.backward(np.ones_like(out))
        grads = [np.array(g) for _, g in net.named_gradients()]
        trainer = bx.Trainer(net, batch_size=32, seed=1)
        trainer.fit(X, y, epochs=2, verbose=0, lengths=lengths)
        results.append((out, dX, grads, net.state_dict()))
    (o1, d1, g1, s1), (o2, d2, g2, s2) = results
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_array_equal(d1, d2)
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)
    for key in s1:
        np.testing.assert_array_equal(s1[key], s2[key])


def test_fit_save_load_and_resume(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.integers(0, 20, size=(60, 8))
    lengths = rng.integers(2, 9, size=60)
    y = (X * (np.arange(8)[None, :] < lengths[:, None])).sum(1) % 3  # depends on the real steps only

    def make():
        net = bx.Network([bx.Embedding(20, 6), bx.GRU(6, 8, bidirectional=True), bx.Dense(16, 3)],
                         input_shape=(8,), seed=7)
        return net, bx.Trainer(net, optimizer=bx.Adam(lr=1e-2), batch_size=16, seed=3)

    net, trainer = make()
    ckpt = tmp_path / "ckpt.safetensors"
    history = trainer.fit(X, y, epochs=4, verbose=0, lengths=lengths, validation_data=(X[:10], y[:10]),
                          validation_lengths=lengths[:10],
                          callbacks=[bx.ModelCheckpoint(str(ckpt), save_best_only=False)])
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "net.safetensors"
    net.save(path)
    loaded = bx.Network.load(path)
    np.testing.assert_array_equal(loaded.predict(X, lengths=lengths), net.predict(X, lengths=lengths))
    assert repr(loaded) == repr(net)

    # resuming from epoch 2's checkpoint ends where the uninterrupted run ended
    net2, trainer2 = make()
    trainer2.fit(X, y, epochs=2, verbose=0, lengths=lengths, validation_data=(X[:10], y[:10]),
                 validation_lengths=lengths[:10], callbacks=[bx.ModelCheckpoint(str(ckpt))])
    net3, trainer3 = make()
    trainer3.fit(X, y, epochs=4, verbose=0, lengths=lengths, resume_from=ckpt)
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(net3.state_dict()[key], value)


def test_lengths_are_shuffled_with_their_samples():
    """fit with shuffling equals manual steps over the same batches with their lengths."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((10, 5, 2))
    lengths = rng.integers(1, 6, size=10)
    y = rng.integers(0, 2, size=10)
    a = bx.Network([bx.SimpleRNN(2, 3), bx.Dense(3, 2)], input_shape=(5, 2), seed=1, dtype="float64")
    b = bx.Network([bx.SimpleRNN(2, 3), bx.Dense(3, 2)], input_shape=(5, 2), seed=1, dtype="float64")
    trainer = bx.Trainer(a, optimizer=bx.SGD(lr=0.1), batch_size=10, shuffle=True, seed=2)
    trainer.fit(X, y, epochs=1, verbose=0, lengths=lengths)
    _, grads = b.loss_and_gradients(X, y, lengths=lengths)  # one batch of all: order does not matter
    for name, p in b.named_parameters():
        p -= 0.1 * grads[name]
    for key, value in a.state_dict().items():
        assert_close(value, b.state_dict()[key], 1e-13, key)


# ---- errors ----------------------------------------------------------------------------
def test_bad_input_is_refused_before_anything_changes():
    net = bx.Network([bx.Embedding(5, 3), bx.GRU(3, 4), bx.Dense(4, 2)], input_shape=(4,), seed=0)
    trainer = bx.Trainer(net, batch_size=1)
    before = net.state_dict()
    X = np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
    y = np.array([0, 1])
    bad_ids = [np.array([[0, 1, 2, 3], [1, 2, 3, 5]]), np.array([[0, 1, 2, 3], [1, 2, -1, 4]]),
               np.array([[0, 1, 2.5, 3], [1, 2, 3, 4]])]
    for Xb in bad_ids:
        with pytest.raises(ValueError, match="token id"):
            trainer.fit(Xb, y, verbose=0)
        with pytest.raises(ValueError, match="token id"):
            net.predict(Xb)
        with pytest.raises(ValueError, match="token id"):
            net.loss_and_gradients(Xb, y)
    for lengths, match in (([0, 4], "in \\[1, 4\\]"), ([1, 5], "in \\[1, 4\\]"), ([1], "shape \\(2,\\)"),
                           ([1.5, 2], "integers")):
        with pytest.raises(ValueError, match=match):
            trainer.fit(X, y, lengths=lengths, verbose=0)
    for key, value in before.items():
        np.testing.assert_array_equal(net.state_dict()[key], value)
    assert trainer.epochs_done == 0

    with pytest.raises(ValueError, match="takes no lengths"):
        bx.Network([bx.Dense(3, 2)], seed=0).predict(np.zeros((2, 3)), lengths=[1, 1])
    flat = bx.Network([bx.Flatten(), bx.Reshape((4, 3)), bx.GRU(3, 2)], input_shape=(4, 3))
    with pytest.raises(ValueError, match="mixes the steps"):
        flat.predict(np.zeros((1, 4, 3)), lengths=[2])
    flat.predict(np.zeros((1, 4, 3)))  # fine without lengths
    with pytest.raises(ValueError, match="first layer"):
        bx.Network([bx.Dense(3, 3), bx.Embedding(4, 2)], input_shape=(2, 3))
    with pytest.raises(ValueError, match="input_shape"):
        bx.Network([bx.Embedding(4, 2), bx.Dense(2, 2)])
    with pytest.raises(ValueError, match="float32"):
        bx.Network([bx.Embedding(2**24 + 1, 1)], input_shape=(2,))
    with pytest.raises(ValueError, match="steps, 3"):
        bx.Network([bx.LSTM(3, 2)])
    with pytest.raises(ValueError, match="input_size=3"):
        bx.Network([bx.LSTM(3, 2)], input_shape=(5, 4))
    with pytest.raises(ValueError, match="nonlinearity"):
        bx.SimpleRNN(2, 2, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="padding_idx"):
        bx.Embedding(3, 2, padding_idx=3)
    with pytest.raises(ValueError, match="validation_data"):
        trainer.fit(X, y, validation_lengths=[1, 1], verbose=0)


def test_layer_api():
    layer = bx.LSTM(3, 4, bidirectional=True, return_sequences=True)
    net = bx.Network([layer], input_shape=(5, 3))
    assert net.output_shape == (5, 8)
    assert layer.weight_ih.shape == (16, 3) and layer.weight_hh_reverse.shape == (16, 4)
    assert layer.num_params() == sum(p.size for p in net.parameters()) == 2 * (16 * 7 + 32)
    assert np.all(np.abs(net.parameters()[0]) <= 0.5) and np.std(net.parameters()[0]) > 0.2  # U(-1/2, 1/2)
    assert repr(layer) == "LSTM(3, 4, bidirectional=True, return_sequences=True)"
    no_bias = bx.GRU(3, 4, bias=False)
    bx.Network([no_bias], input_shape=(2, 3))
    assert no_bias.bias_ih is None and no_bias.param_names == ("weight_ih", "weight_hh")
    emb = bx.Embedding(7, 2)
    bx.Network([emb], input_shape=(3,))
    assert abs(np.std(emb.weight) - 1) < 0.6


def test_frozen_recurrent_layer_passes_the_gradient_on():
    rng = np.random.default_rng(6)
    net = bx.Network([bx.Dense(3, 4, activation="tanh"), bx.LSTM(4, 5, bidirectional=True), bx.Dense(10, 2)],
                     input_shape=(6, 3), seed=2, dtype="float64")
    net.layers[1].trainable = False
    X = rng.standard_normal((5, 6, 3))
    before = net.state_dict()
    out = net.forward(X, training=True, lengths=[6, 2, 4, 1, 5])
    net.zero_grad()
    net.backward(rng.standard_normal(out.shape))
    grads = {k: np.array(g) for k, g in net.named_gradients()}
    assert all(not np.any(g) for k, g in grads.items() if k.startswith("1."))
    assert np.any(grads["0.weight"]) and np.any(grads["2.weight"])  # the gradient went through the LSTM
    bx.Trainer(net, batch_size=5).fit(X, rng.integers(0, 2, 5), verbose=0, lengths=[6, 2, 4, 1, 5])
    after = net.state_dict()
    for key in before:
        assert np.array_equal(before[key], after[key]) == key.startswith("1."), key


def test_lengths_pass_through_layers_that_keep_the_steps():
    """Embedding -> LayerNorm over the features -> Dense -> GRU: every layer before the GRU
    keeps the steps, so the lengths reach it; a padded sample equals the sample alone."""
    rng = np.random.default_rng(12)

    def build(steps):
        return bx.Network([bx.Embedding(7, 4), bx.LayerNorm(4), bx.Dense(4, 4, activation="tanh"),
                           bx.GRU(4, 3, bidirectional=True)], input_shape=(steps,), seed=3, dtype="float64")

    long_net, short_net = build(6), build(4)
    short_net.load_state_dict(long_net.state_dict())
    X = rng.integers(0, 7, size=(2, 6))
    out = long_net.predict(X, lengths=[4, 6])
    assert_close(out[0], short_net.predict(X[:1, :4])[0], 1e-12, "padded vs alone")
