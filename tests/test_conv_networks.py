"""Convolutional networks end to end: whole networks against PyTorch autograd
in float64 over random shapes, the code paths of the convolution (several
samples per product, one sample written in place, 1x1 straight to the
product, the first layer without an input gradient), results identical for
any thread count, BatchNorm's running statistics as buffers (torch's update,
saved, loaded, checkpointed, never optimised), exchange with torch and ONNX,
and clear errors. The per-kind tests against the NumPy reference are in
test_layer_kinds.py."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, assert_grads_close, randomize, ref, ref_stack

import backpropx as bx

TOL = 1e-10


def _torch():
    return pytest.importorskip("torch")


def _random_cnn(rng: np.random.Generator, seed: int) -> tuple[list[bx.Layer], tuple[int, ...]]:
    """A small random 2-D or 1-D CNN: odd sizes, stride above the kernel,
    padding of at least half the kernel, dilation, pooling and batch norm."""
    c = int(rng.integers(1, 4))
    if seed % 2:
        L = int(rng.integers(9, 30)) | 1
        layers = [bx.Conv1D(c, 5, 5, stride=2, padding=3, activation="relu"), bx.BatchNorm1D(5),
                  bx.MaxPool1D(3, stride=2, padding=1), bx.Conv1D(5, 4, 3, stride=4, dilation=2, padding=2,
                                                                    activation="tanh"),
                  bx.AvgPool1D(2, stride=1, padding=1, count_include_pad=bool(seed % 4 == 1)), bx.Flatten()]
        shape: tuple[int, ...] = (c, L)
    else:
        H, W = int(rng.integers(5, 14)) | 1, int(rng.integers(4, 12))
        layers = [bx.Conv2D(c, 6, (3, 2), stride=(1, 3), padding=(2, 1), dilation=(2, 1), activation="elu"),
                  bx.BatchNorm2D(6), bx.MaxPool2D(2, stride=3, padding=1), bx.Conv2D(6, 4, 1, activation="gelu"),
                  bx.AvgPool2D(3, stride=1, padding=1), bx.GlobalAvgPool()]
        shape = (c, H, W)
    return layers, shape


def _with_head(layers, shape, dtype, seed):
    probe = bx.Network(layers, input_shape=shape, dtype=dtype)
    size = int(np.prod(probe.output_shape))
    return bx.Network([layer._copy() for layer in layers] + [bx.Dense(size, 3)], input_shape=shape, seed=seed,
                      dtype=dtype)


def _torch_grads(torch, module, X, dY):
    xt = torch.tensor(X, requires_grad=True)
    out = module(xt)
    params = list(module.parameters())
    *g, gx = torch.autograd.grad((out * torch.tensor(dY)).sum(), [*params, xt])
    return out.detach().numpy(), gx.numpy(), [t.numpy() for t in g]


@pytest.mark.parametrize("seed", range(8))
def test_random_cnns_match_torch_autograd(seed):
    """forward (training mode: batch statistics), every parameter gradient and
    the input gradient <= 1e-10 relative in float64; then the running
    statistics torch and backpropx moved to, and the evaluation output."""
    torch = _torch()
    rng = np.random.default_rng(seed)
    layers, shape = _random_cnn(rng, seed)
    net = _with_head(layers, shape, "float64", seed)
    randomize(net, rng)
    module = net.to_torch().train()
    n = (1, 2, 4, 7)[seed % 4]
    if seed % 2 and n == 1:
        n = 2  # BatchNorm1D on 1-pixel maps needs two values per channel
    X = rng.standard_normal((n, *shape))
    out = net.forward(X, training=True)
    dY = rng.standard_normal(out.shape)
    dX = net.backward(dY)
    out_t, dX_t, grads_t = _torch_grads(torch, module, X, dY)
    assert_close(out, out_t, TOL, "forward")
    assert_close(dX, dX_t, TOL, "input gradient")
    ours = [g for _, g in net.named_gradients()]
    assert [g.shape for g in ours] == [g.shape for g in grads_t]
    for (name, g), gt in zip(net.named_gradients(), grads_t):
        assert_close(g, gt, TOL, name)
    torch_buffers = [b.numpy() for name, b in module.named_buffers() if not name.endswith("num_batches_tracked")]
    ours_buffers = [b for name, b in net.named_buffers() if not name.endswith("num_batches_tracked")]
    for b, bt in zip(ours_buffers, torch_buffers):
        assert_close(b, bt, TOL, "running statistics")
    module.eval()
    assert_close(net.predict(X), module(torch.tensor(X)).detach().numpy(), TOL, "evaluation")


def _conv_case(shape, conv, n, seed=0, dtype="float64"):
    net = bx.Network([conv], input_shape=shape, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    randomize(net, rng)
    X = rng.standard_normal((n, *shape)).astype(dtype)
    dY = rng.standard_normal((n, *net.output_shape)).astype(dtype)
    return net, X, dY


@pytest.mark.parametrize("case", [
    "grouped",       # many small images: several samples' columns in one product
    "ragged",        # the last group smaller than the others
    "single",        # an image of more than 2048 positions: one sample per product, in place
    "pointwise",     # 1x1: the image is its own column matrix, the input gradient straight from the product
    "pointwise-grouped",
])
def test_convolution_paths_match_the_reference(case):
    shapes = {"grouped": ((2, 7, 5), bx.Conv2D(2, 3, 3, padding=1, activation="relu"), 40),
              "ragged": ((3, 30), bx.Conv1D(3, 4, 5, stride=2, padding=2), 203),
              "single": ((2, 49, 50), bx.Conv2D(2, 3, 3, stride=1, padding=1, activation="tanh"), 3),
              "pointwise": ((3, 48, 45), bx.Conv2D(3, 5, 1), 2),
              "pointwise-grouped": ((3, 5, 4), bx.Conv2D(3, 5, 1, activation="sigmoid"), 9)}
    shape, conv, n = shapes[case]
    net, X, dY = _conv_case(shape, conv, n)
    out = net.forward(X, training=True)
    dX = net.backward(dY)
    ref_out, ref_dX, ref_grads = ref.network_vjp(ref_stack(net), X, dY, ref.Pass(training=True))
    assert_close(out, ref_out, TOL, "forward")
    assert_close(dX, ref_dX, TOL, "input gradient")
    assert_grads_close({k: np.array(g) for k, g in net.named_gradients()}, ref_grads, TOL)


def test_first_layer_skips_its_input_gradient_and_keeps_its_parameter_gradients():
    """loss_and_gradients (the fit path: no input gradient below the first
    layer) gives the reference's parameter gradients."""
    rng = np.random.default_rng(1)
    net = bx.Network([bx.Conv2D(1, 4, 3, padding=1, activation="relu"), bx.MaxPool2D(2), bx.Flatten(),
                      bx.Dense(4 * 4 * 4, 5)], input_shape=(1, 8, 8), seed=1, dtype="float64")
    X = rng.standard_normal((6, 1, 8, 8))
    y = rng.integers(0, 5, 6)
    loss, grads = net.loss_and_gradients(X, y)
    value, ref_grads = ref.loss_and_gradients(ref_stack(net), X, y, "cross_entropy")
    assert abs(loss - value) <= TOL * abs(value)
    assert_grads_close(grads, ref_grads, TOL)


def test_results_are_identical_for_any_thread_count(restore_threads):
    """Sizes past the threads' grain and the product's threading threshold:
    the same bits on 1 and 2 threads for forward, backward, buffers and fit."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((24, 3, 20, 18)).astype(np.float32)
    y = rng.integers(0, 10, 24)
    results = []
    for threads in (1, 2):
        bx.set_num_threads(threads)
        net = bx.Network([bx.Conv2D(3, 16, 3, padding=1, activation="relu"), bx.BatchNorm2D(16),
                          bx.MaxPool2D(2), bx.Conv2D(16, 32, 3, padding="same", activation="gelu"),
                          bx.AvgPool2D(3, stride=2, padding=1), bx.LayerNorm((5, 5)), bx.Conv2D(32, 32, 1),
                          bx.GlobalAvgPool(), bx.Dense(32, 10)], input_shape=(3, 20, 18), seed=3)
        out = net.forward(X, training=True)
        dX = net.backward(np.ones_like(out))
        grads = [np.array(g) for _, g in net.named_gradients()]
        trainer = bx.Trainer(net, optimizer=bx.Adam(lr=1e-3), batch_size=8, seed=0)
        trainer.fit(X, y, epochs=1, verbose=0)
        results.append((out, dX, grads, net.state_dict()))
    (out, dX, grads, sd), (out2, dX2, grads2, sd2) = results
    np.testing.assert_array_equal(out, out2)
    np.testing.assert_array_equal(dX, dX2)
    for g, g2 in zip(grads, grads2):
        np.testing.assert_array_equal(g, g2)
    for key in sd:
        np.testing.assert_array_equal(sd[key], sd2[key], err_msg=key)


# ---- BatchNorm's buffers -----------------------------------------------------------
def _bn_net(dtype="float64", momentum=0.1):
    return bx.Network([bx.Conv2D(2, 3, 3, padding=1), bx.BatchNorm2D(3, momentum=momentum), bx.Flatten(),
                       bx.Dense(3 * 5 * 5, 4, activation="softmax")], input_shape=(2, 5, 5), seed=4, dtype=dtype)


@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
def test_running_statistics_follow_torch_through_fit(momentum):
    """Several training batches through fit, against torch's BatchNorm2d in
    train mode on the same batches: momentum (or the cumulative average),
    the unbiased variance, num_batches_tracked."""
    torch = _torch()
    rng = np.random.default_rng(5)
    # first, so that its input does not change with the weights the steps update
    net = bx.Network([bx.BatchNorm2D(2, momentum=momentum), bx.Flatten(), bx.Dense(50, 4)], input_shape=(2, 5, 5),
                     dtype="float64")
    module = net.to_torch().train()
    X = rng.standard_normal((20, 2, 5, 5))
    y = rng.integers(0, 4, 20)
    trainer = bx.Trainer(net, optimizer=bx.SGD(lr=0.1), batch_size=6, shuffle=False)
    trainer.fit(X, y, epochs=2, verbose=0)
    with torch.no_grad():
        for _ in range(2):
            for s in range(0, 20, 6):
                module(torch.tensor(X[s:s + 6]))
    bn = module[0]
    assert_close(net.layers[0].running_mean, bn.running_mean.numpy(), TOL)
    assert_close(net.layers[0].running_var, bn.running_var.numpy(), TOL)
    assert float(net.layers[0].num_batches_tracked) == int(bn.num_batches_tracked) == 8


def test_buffers_are_state_but_not_parameters(tmp_path):
    rng = np.random.default_rng(6)
    net = _bn_net()
    assert [name for name, _ in net.named_buffers()] == ["1.running_mean", "1.running_var",
                                                         "1.num_batches_tracked"]
    assert list(net.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                      "1.num_batches_tracked", "3.weight", "3.bias"]
    assert net.num_params == 2 * 3 * 9 + 3 + 3 + 3 + 75 * 4 + 4  # buffers are not parameters
    np.testing.assert_array_equal(net.layers[1].running_var, np.ones(3))
    X, y = rng.standard_normal((12, 2, 5, 5)), rng.integers(0, 4, 12)
    # weight decay and L2 never reach the buffers; an optimizer's state covers parameters only
    trainer = bx.Trainer(net, optimizer=bx.AdamW(lr=1e-2, weight_decay=0.5), batch_size=4, l2=0.1)
    trainer.fit(X, y, epochs=2, verbose=0)
    rm = net.layers[1].running_mean.copy()
    assert not np.allclose(rm, np.zeros(3))
    _names, buffers, _steps = trainer.optimizer_state()
    assert all(b.size == net.num_params for b in buffers)
    # save / load / state_dict round trips carry them
    path = tmp_path / "bn.safetensors"
    net.save(path)
    loaded = bx.Network.load(path)
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value, err_msg=key)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    fresh = _bn_net()
    fresh.load_state_dict(net.state_dict())
    np.testing.assert_array_equal(fresh.predict(X), net.predict(X))
    bad = net.state_dict()
    del bad["1.running_var"]
    with pytest.raises(ValueError, match="missing keys \\['1.running_var'\\]"):
        fresh.load_state_dict(bad)
    # a network built on trained layers copies their buffers too
    copy = bx.Network(net.layers, input_shape=(2, 5, 5), dtype="float64")
    np.testing.assert_array_equal(copy.layers[1].running_mean, rm)


def test_checkpoint_resume_continues_bit_for_bit(tmp_path):
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((30, 2, 5, 5)).astype(np.float32), rng.integers(0, 4, 30)
    straight = _bn_net("float32")
    bx.Trainer(straight, optimizer=bx.Adam(lr=1e-2), batch_size=8, seed=3).fit(X, y, epochs=4, verbose=0)
    first = _bn_net("float32")
    trainer = bx.Trainer(first, optimizer=bx.Adam(lr=1e-2), batch_size=8, seed=3)
    path = tmp_path / "ckpt.safetensors"
    trainer.fit(X, y, epochs=2, verbose=0, callbacks=[bx.ModelCheckpoint(path)])
    resumed = _bn_net("float32")
    trainer2 = bx.Trainer(resumed, optimizer=bx.Adam(lr=1e-2), batch_size=8, seed=99)
    trainer2.fit(X, y, epochs=4, verbose=0, resume_from=path)
    for key, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value, err_msg=key)


def test_evaluation_uses_running_statistics_and_training_needs_two_values():
    net = bx.Network([bx.BatchNorm1D(3)], input_shape=(3,), dtype="float64")
    net.layers[0].running_mean[...] = [1.0, 2.0, 3.0]
    net.layers[0].running_var[...] = [4.0, 1.0, 0.25]
    X = np.array([[1.0, 1.0, 1.0]])
    expected = (X - [1.0, 2.0, 3.0]) / np.sqrt(np.array([4.0, 1.0, 0.25]) + 1e-5)
    assert_close(net.predict(X), expected, 1e-15)
    before = net.state_dict()
    with pytest.raises(ValueError, match="more than one value per channel in training"):
        net.forward(X, training=True)
    for key, value in before.items():
        np.testing.assert_array_equal(net.state_dict()[key], value, err_msg=key)


# ---- exchange ------------------------------------------------------------------------
def _torch_cnn(torch, dtype):
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding="valid", dilation=(1, 2)), nn.Tanh(),
        nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False), nn.LayerNorm([6, 3, 4]),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5), nn.Softmax(dim=-1)).to(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_from_torch_and_back(dtype):
    torch = _torch()
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    model = _torch_cnn(torch, tdtype)
    rng = np.random.default_rng(8)
    with torch.no_grad():  # trained-looking statistics
        model.train()
        for _ in range(3):
            model(torch.tensor(rng.standard_normal((8, 1, 10, 10)), dtype=tdtype))
    model.eval()
    net = bx.Network.from_torch(model, input_shape=(1, 10, 10))
    assert [type(layer).__name__ for layer in net.layers] == [
        "Conv2D", "BatchNorm2D", "Activation", "MaxPool2D", "Conv2D", "AvgPool2D", "LayerNorm", "GlobalAvgPool",
        "Flatten", "Dense"]
    assert net.layers[4].activation == "tanh"  # folded into the convolution
    X = rng.standard_normal((5, 1, 10, 10)).astype(dtype)
    tol = 1e-12 if dtype == "float64" else 1e-5
    expected = model(torch.tensor(X)).detach().numpy()
    assert_close(net.predict(X), expected, tol)
    back = net.to_torch()
    assert_close(back(torch.tensor(X)).detach().numpy(), expected, tol)
    assert float(net.layers[1].num_batches_tracked) == 3


def test_onnx_export_matches_onnxruntime(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(9)
    net = bx.Network([bx.Conv2D(2, 4, 3, padding="same", activation="relu"), bx.BatchNorm2D(4),
                      bx.MaxPool2D(3, stride=2, padding=1), bx.Conv2D(4, 4, (2, 3), stride=(1, 2), dilation=(2, 1),
                                                                 padding=(1, 0)),
                      bx.AvgPool2D(2, padding=1, count_include_pad=False), bx.LayerNorm((3, 1), bias=False),
                      bx.GlobalAvgPool(), bx.Dense(4, 3, activation="softmax")], input_shape=(2, 9, 8), seed=2)
    X = rng.standard_normal((6, 2, 9, 8)).astype(np.float32)
    net.forward(X, training=True)  # running statistics away from their start
    seq = bx.Network([bx.Conv1D(3, 4, 4, padding="same"), bx.BatchNorm1D(4), bx.MaxPool1D(2), bx.AvgPool1D(3, 1, 1),
                      bx.GlobalAvgPool(keepdim=True), bx.Flatten()], input_shape=(3, 11), seed=3)
    for model, x in ((net, X), (seq, rng.standard_normal((4, 3, 11)).astype(np.float32))):
        path = tmp_path / "m.onnx"
        model.to_onnx(path)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert_close(sess.run(None, {"input": x})[0], model.predict(x), 1e-5)


# ---- errors -------------------------------------------------------------------------
@pytest.mark.parametrize("build, error, match", [
    (lambda: bx.Conv2D(1, 4, 0), ValueError, "kernel_size must be positive"),
    (lambda: bx.Conv2D(1, 4, (3, 3, 3)), ValueError, "tuple of 2"),
    (lambda: bx.Conv1D(1, 4, 3, stride=2, padding="same"), ValueError, "stride 1"),
    (lambda: bx.Conv1D(1, 4, 3, padding="full"), ValueError, "'same' or 'valid'"),
    (lambda: bx.Conv2D(1, 4, 3, activation="softmax"), ValueError, "softmax"),
    (lambda: bx.Conv2D(1, 4, 2.0), TypeError, "kernel_size"),
    (lambda: bx.MaxPool2D(2, padding=2), ValueError, "at most half"),
    (lambda: bx.BatchNorm2D(3, momentum=2.0), ValueError, "momentum"),
    (lambda: bx.LayerNorm(()), ValueError, "at least one axis"),
    (lambda: bx.Network([bx.Conv2D(1, 4, 3)]), ValueError, "needs the network's input_shape"),
    (lambda: bx.Network([bx.Conv2D(3, 4, 3)], input_shape=(1, 8, 8)), ValueError, "in_channels=3"),
    (lambda: bx.Network([bx.Conv2D(1, 4, 3)], input_shape=(64,)), ValueError, "Reshape"),
    (lambda: bx.Network([bx.Conv1D(1, 4, 7)], input_shape=(1, 5)), ValueError, "larger than the padded input"),
    (lambda: bx.Network([bx.Conv2D(1, 4, 3), bx.Dense(36, 2)], input_shape=(1, 5, 5)), ValueError, "Flatten"),
    (lambda: bx.Network([bx.BatchNorm2D(3)], input_shape=(4, 2, 2)), ValueError, "BatchNorm2D\\(3\\)"),
    (lambda: bx.Network([bx.LayerNorm(4)], input_shape=(4, 3)), ValueError, "trailing axes"),
    (lambda: bx.Network([bx.GlobalAvgPool()], input_shape=(4,)), ValueError, "channels"),
])
def test_bad_configurations_raise_clear_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize("training", [False, True])
def test_max_pooling_ties_and_padding_follow_torch(training):
    """The first of equal maxima (in row-major window order) takes the
    gradient, and padding never wins, even over negative values: as
    torch.nn.MaxPool2d. (Inputs are finite: the API refuses NaN and inf.)"""
    torch = _torch()
    x = np.array([[[[1.0, 1.0, 0.0, -5.0, 2.0],
                    [1.0, 0.5, 1.0, -5.0, 2.0],
                    [3.0, 3.0, -1.0, -7.0, -7.0],
                    [3.0, 2.0, -2.0, -7.0, -7.0]]]])
    net = bx.Network([bx.MaxPool2D(2, stride=2, padding=1)], input_shape=(1, 4, 5), dtype="float64")
    pool = torch.nn.MaxPool2d(2, stride=2, padding=1)
    out = net.forward(x, training=True) if training else net.predict(x)
    xt = torch.tensor(x, requires_grad=True)
    yt = pool(xt)
    np.testing.assert_array_equal(out, yt.detach().numpy())
    if training:
        dY = np.arange(1.0, 1.0 + yt.numel()).reshape(yt.shape)
        (gx,) = torch.autograd.grad((yt * torch.tensor(dY)).sum(), xt)
        np.testing.assert_array_equal(net.backward(dY), gx.numpy())
