"""Post-training quantization (analysis.clipping.ptq): BN folding, the quantized copy, the CLI."""

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from analysis import clipping as C
from analysis import data, models
from analysis.quant import quantize_uniform
from analysis.training import evaluate, fit


def _randomize_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.weight.data = torch.randn(n, generator=g)  # some negative γ
            m.bias.data = torch.randn(n, generator=g) * 0.1
            m.running_mean = torch.randn(n, generator=g) * 0.2
            m.running_var = torch.rand(n, generator=g) + 0.3
    return model.eval()


@pytest.fixture(scope="module")
def small_cnn():
    torch.manual_seed(0)
    return _randomize_bn(models.build("cnn", in_shape=(1, 8, 8), num_classes=10, width=4))


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", "train"), data.load("digits", "test")


def test_fold_bn_keeps_the_function(small_cnn):
    import copy

    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    folded = C.fold_bn_scale_(copy.deepcopy(small_cnn))
    with torch.no_grad():
        assert torch.allclose(small_cnn(x), folded(x), atol=1e-5)
    w0, w1 = small_cnn[0].weight, folded[0].weight
    assert not torch.allclose(w0, w1)  # the scale moved into the weights


def test_fold_bn_scales_each_channel_by_abs_gamma_over_sigma():
    """W_c ← k_c·W_c with k_c = |γ_c|/sqrt(var_c + ε) > 0, negative γ included, function kept."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, bias=False), torch.nn.BatchNorm2d(3),
                                torch.nn.ReLU()).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([2.0, -0.5, -3.0]))
        model[1].bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        model[1].running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        model[1].running_var.copy_(torch.tensor([1.0, 4.0, 0.25]))
    k = torch.tensor([2.0, 0.5, 3.0]) / torch.sqrt(torch.tensor([1.0, 4.0, 0.25]) + 1e-5)  # ≈ 2, ¼, 6
    folded = C.fold_bn_scale_(copy.deepcopy(model))
    torch.testing.assert_close(folded[0].weight, model[0].weight * k.view(3, 1, 1, 1))
    x = torch.randn(4, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-5)


def test_quantized_copy(small_cnn):
    x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    before = {k: v.clone() for k, v in small_cnn.state_dict().items()}
    with torch.no_grad():
        ref = small_cnn(x)
        q8 = C.quantize_model(small_cnn, x, C.PTQConfig(8, 8))
        q2 = C.quantize_model(small_cnn, x, C.PTQConfig(2, 2, method="aciq"))
        err8 = (q8(x) - ref).norm() / ref.norm()
        err2 = (q2(x) - ref).norm() / ref.norm()
    assert err8 < 0.05 < err2
    for k, v in small_cnn.state_dict().items():
        assert torch.equal(v, before[k])  # the float model is untouched
    layers = C.quant_layers(q2)
    assert [len(m._forward_pre_hooks) for m in layers] == [1] * len(layers)
    distinct = [max(row.unique().numel() for row in m.weight) for m in layers]  # per output channel
    assert 4 < distinct[-1] <= 256  # the ends at 8 bits
    assert max(distinct[1:-1]) <= 4  # 2 bits
    q2t = C.quantize_model(small_cnn, x, C.PTQConfig(2, 2, method="aciq", per_channel=False))
    assert max(m.weight.unique().numel() for m in C.quant_layers(q2t)[1:-1]) <= 4  # one range per tensor


def test_bit_allocation_and_bias_correction_in_a_model(small_cnn):
    x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    cfg = C.PTQConfig(3, 3, method="aciq", allocate="wa", bias_correction=True)
    q = C.quantize_model(small_cnn, x, cfg)
    layer = C.quant_layers(q)[2]
    hook = next(iter(layer._forward_pre_hooks.values()))
    assert hook.bits.mean() == pytest.approx(3.0, abs=0.5 / len(hook.bits))
    w_float = C.fold_bn_scale_(__import__("copy").deepcopy(small_cnn))
    w = C.quant_layers(w_float)[2].weight
    dims = (1, 2, 3)
    assert torch.allclose(layer.weight.mean(dims), w.mean(dims), atol=1e-6)


def test_bias_correction_leaves_the_8_bit_end_layers_alone(small_cnn):
    """Bias correction (like bit allocation) is for the low-bit middle layers: the 8-bit first and
    last layers are quantized as without it, every middle layer is corrected."""
    x = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    inputs = C.layer_inputs(small_cnn, x)
    cfg = C.PTQConfig(3, 3, method="aciq")
    plain = C.quant_layers(C.quantize_model(small_cnn, x, cfg, inputs))
    corrected = C.quant_layers(C.quantize_model(small_cnn, x, replace(cfg, bias_correction=True), inputs))
    assert torch.equal(plain[0].weight, corrected[0].weight)
    assert torch.equal(plain[-1].weight, corrected[-1].weight)
    assert all(not torch.equal(a.weight, b.weight) for a, b in zip(plain[1:-1], corrected[1:-1]))


def test_clip_ranges():
    g = torch.Generator().manual_seed(4)
    x = torch.distributions.Laplace(0.0, 1.0).sample((5000,))
    bits, lo, hi = C.clip_ranges(x, 4, "aciq")
    alpha = C.optimal_alpha(4, "laplace") * x.abs().mean().item()
    assert bits == 4 and hi.item() == pytest.approx(alpha, rel=0.05)
    bits, lo, hi = C.clip_ranges(x, 4, "minmax")
    assert lo.item() == x.min().item() and hi.item() == x.max().item()
    r = torch.relu(torch.randn(100, 6, 5, generator=g))
    bits, lo, hi = C.clip_ranges(r, 3, "aciq", dim=1, allocate=True)
    assert bits.shape == (6,) and bits.sum() == 18 and (lo < 0).all() and (hi <= r.amax((0, 2))).all()
    with pytest.raises(ValueError, match="per channel"):
        C.clip_ranges(x, 4, allocate=True)
    with pytest.raises(ValueError, match="method"):
        C.clip_ranges(x, 4, "mse")


def test_clip_ranges_of_a_relu_tensor_keep_zero_as_a_level():
    """A ReLU tensor gets relu_range(α, M): Δ = 2α/(2^(M+1) − 1), lo = −Δ/2, so Q(0) = 0 exactly."""
    g = torch.Generator().manual_seed(0)
    r = torch.relu(torch.randn(2000, generator=g, dtype=torch.float64))
    for bits in (2, 3, 4):
        for method in ("minmax", "aciq"):
            m, lo, hi = C.clip_ranges(r, bits, method)
            delta = 2 * hi.item() / (2 ** (bits + 1) - 1)
            assert lo.item() == pytest.approx(-delta / 2, rel=1e-12)
            q = quantize_uniform(r, bits, lo, hi)
            assert (q[r == 0] == 0).all() and q.min().item() == 0.0
        assert hi.item() <= r.max().item()
        _, lo, hi = C.clip_ranges(r, bits, "minmax")
        assert (lo.item(), hi.item()) == pytest.approx(C.relu_range(r.max().item(), bits), rel=1e-12)


def test_ptq_cli_on_a_run_folder(tmp_path, digits, capsys):
    (X, y), test = digits
    torch.manual_seed(0)
    options = {"in_shape": [1, 8, 8], "num_classes": 10, "width": 8}
    model = models.build("cnn", **{**options, "in_shape": (1, 8, 8)})
    fit(model, (X, y), epochs=1, lr=3e-3, progress=False)
    run = tmp_path / "run"
    run.mkdir()
    config = {"model": "cnn", "model_options": options, "dataset": "digits"}
    (run / "config.json").write_text(json.dumps(config))
    torch.save({"model": model.state_dict()}, run / "checkpoint.pt")
    out = tmp_path / "ptq.json"
    assert C.ptq_cli(["--run", str(run), "--calibration", "100", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "W4A4 naive" in printed and "+ bias correction" in printed
    rows = json.loads(out.read_text())["rows"]
    assert [r["method"] for r in rows][0] == "float" and len(rows) == 6
    assert rows[0]["accuracy"] == pytest.approx(1 - evaluate(model, test)[1])
    assert all(0 <= r["accuracy"] <= 1 for r in rows)
    assert C.ptq_cli(["--run", str(tmp_path / "missing")]) == 2
    assert np.isfinite([r["accuracy"] for r in rows]).all()


@pytest.mark.parametrize("args, message", [
    (["--calibration", "0"], "argument --calibration: must be >= 1, got 0"),  # was: torch.cat() traceback
    (["--calibration", "-5"], "argument --calibration: must be >= 1, got -5"),
    (["--json", "{tmp}/missing/ptq.json"], "argument --json: no folder {tmp}/missing to write ptq.json"),
    (["--json", "{tmp}"], "argument --json: {tmp} is a folder"),
])
def test_ptq_cli_bad_calibration_or_json_is_an_argparse_error_before_the_table(
        tmp_path, monkeypatch, capsys, args, message):
    """--json into a missing folder failed only after the whole table was computed."""
    options = {"in_shape": [1, 8, 8], "num_classes": 10, "width": 4}
    model = models.build("cnn", **{**options, "in_shape": (1, 8, 8)})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "cnn", "model_options": options,
                                                 "dataset": "digits"}))
    torch.save({"model": model.state_dict()}, run / "checkpoint.pt")
    monkeypatch.setattr("analysis.clipping.ptq.ptq_table", lambda *a, **k: pytest.fail("the table ran"))
    with pytest.raises(SystemExit) as exit_:
        C.ptq_cli(["--run", str(run), *[arg.format(tmp=tmp_path) for arg in args]])
    assert exit_.value.code == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err


def test_a_constant_weight_channel_gets_a_range():
    """Widened by a float64 `tiny` (10⁻⁶ of the largest channel scale, 10⁻¹⁸ when every channel
    is constant), a constant channel's range [c, c + tiny] collapsed to [c, c] in float32, and
    quantize_uniform refused it: quantize_model raised 'needs finite lo < hi' on any model with
    a Linear(1, n) (one weight per output channel), and per channel on a channel of 3.0s."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
                                torch.nn.ReLU(), torch.nn.Linear(8, 1)).eval()
    x = torch.randn(200, 1, generator=torch.Generator().manual_seed(1))
    for method in ("minmax", "aciq"):
        q = C.quantize_model(model, x, C.PTQConfig(4, 4, method=method))
        assert torch.allclose(q[0].weight, model[0].weight, rtol=1e-6)  # one value a channel: kept
    w = torch.randn(4, 16, generator=torch.Generator().manual_seed(2)) * 0.1
    w[0] = 3.0
    for method in ("minmax", "aciq"):
        bits, lo, hi = C.clip_ranges(w, 4, method, dim=0, relu=False)
        assert lo.dtype == torch.float32 and (hi > lo).all()
        w_q = quantize_uniform(w, 4, lo[:, None], hi[:, None])
        assert torch.allclose(w_q[0], w[0], rtol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_per_tensor_analyses_of_a_cuda_tensor_equal_those_of_its_cpu_copy():
    """The numpy statistics copy a CUDA tensor to the CPU (`.numpy()` raised); the values are
    the same, so the results are equal, not close. (Written without a GPU: not yet run on one.)"""
    from analysis.widgets.clipping import TensorView

    g = torch.Generator().manual_seed(0)
    for t in (torch.randn(6, 40, generator=g), torch.relu(torch.randn(6, 40, generator=g))):
        gpu = t.cuda().requires_grad_()
        assert C.fit_prior(gpu) == C.fit_prior(t) and C.fit_tensor(gpu) == C.fit_tensor(t)
        assert np.array_equal(C.SortedTensor(gpu).values, C.SortedTensor(t).values)
        assert np.array_equal(C.channel_scales(gpu), C.channel_scales(t))
        assert TensorView(gpu).numbers(4, 3.0) == TensorView(t).numbers(4, 3.0)
        for kw in ({}, {"dim": 0, "allocate": True}):
            bits, lo, hi = C.clip_ranges(gpu, 4, **kw)
            bits_cpu, lo_cpu, hi_cpu = C.clip_ranges(t, 4, **kw)
            assert lo.is_cuda and hi.is_cuda and np.array_equal(bits, bits_cpu)
            assert torch.equal(lo.cpu(), lo_cpu) and torch.equal(hi.cpu(), hi_cpu)


def _ptq_run(model, calibration, test, device):
    """quantize_model (min–max, ACIQ, ACIQ + allocation + bias correction) and ptq_table of a copy
    of `model` on `device`, the calibration and test data given on the CPU."""
    model = copy.deepcopy(model).to(device)
    x_test = test[0].to(device)
    cfgs = [C.PTQConfig(4, 4), C.PTQConfig(4, 4, method="aciq"),
            C.PTQConfig(3, 3, method="aciq", allocate="wa", bias_correction=True)]
    runs = []
    for cfg in cfgs:
        q = C.quantize_model(model, calibration.to(device), cfg)
        with torch.no_grad():
            runs.append((q, q(x_test)))
    return model, runs, C.ptq_table(model, calibration, test, allocate="wa")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ptq_of_a_cuda_model_matches_the_same_pipeline_on_the_cpu(digits, dtype, monkeypatch):
    """fit_prior, SortedTensor, the KS choice of a prior and the bit allocation take numpy arrays:
    `.numpy()` raised on a CUDA tensor, clip_ranges multiplied CPU tensors with statistics on
    the GPU, and a hook indexed its calibrated ranges with an index on the input's device. Now
    the statistics are computed on the CPU and the ranges applied on the tensor's device.
    (Written in a session without a GPU: not yet run on one.)"""
    # true float32 products on the GPU: TF32, on by default in cuDNN convolutions since Ampere,
    # rounds every factor to 10 mantissa bits (1e-3 relative), far more than the CPU's rounding
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    (X, y), (X_test, y_test) = digits
    torch.manual_seed(0)
    model = models.build("cnn", in_shape=(1, 8, 8), num_classes=10, width=8)
    fit(model, (X, y), epochs=2, lr=3e-3, progress=False)
    model = model.to(dtype).eval()
    calibration, test = X[:200].to(dtype), (X_test.to(dtype), y_test)
    gpu_model, gpu_runs, gpu_rows = _ptq_run(model, calibration, test, "cuda")
    _, cpu_runs, cpu_rows = _ptq_run(model, calibration, test, "cpu")
    with torch.no_grad():
        ref = model(test[0])

    assert all(p.is_cuda for p in gpu_model.parameters())  # the float model stays where it was
    for (q, out), (q_cpu, out_cpu) in zip(gpu_runs, cpu_runs):
        assert all(t.is_cuda for t in (*q.parameters(), *q.buffers(), out))
        hooks = [h for m in C.quant_layers(q) for h in m._forward_pre_hooks.values()]
        hooks_cpu = [h for m in C.quant_layers(q_cpu) for h in m._forward_pre_hooks.values()]
        assert all(h.lo.is_cuda and h.hi.is_cuda for h in hooks)
        for h, h_cpu in zip(hooks, hooks_cpu, strict=True):
            np.testing.assert_array_equal(h.bits, h_cpu.bits)
            # the ranges are statistics of the calibration inputs, which the GPU computes in
            # another summation order: 1e-15 (float64) or 1e-6 (float32) relative
            rtol = 1e-12 if dtype == torch.float64 else 1e-4
            torch.testing.assert_close(h.lo.cpu(), h_cpu.lo, rtol=rtol, atol=1e-12)
            torch.testing.assert_close(h.hi.cpu(), h_cpu.hi, rtol=rtol, atol=1e-12)
        out = out.cpu()
        if dtype == torch.float64:
            # float64: GPU and CPU differ by ~1e-15 relative per layer; a value changes level
            # only within that distance of a bin edge (odds ~1e-13 per activation), so the
            # outputs agree to rounding, and one level too many or too few anywhere (Δ ≥ 1e-3 of
            # a layer's range) would fail
            torch.testing.assert_close(out, out_cpu, rtol=1e-9, atol=1e-9)
        else:
            # float32: ~1e-6 relative, so a few of the ~5·10^5 activations per run land one
            # level off (on the CPU, 1-ulp changes of the weights moved the outputs by up to
            # 0.2 in one logit, 0.04 of the quantization error in norm): compare in norm with
            # the quantization error itself, and the classes. The float64 case is the tight
            # check; here, on the CPU, one layer's ranges reversed across its channels gave
            # 0.45-0.6 of the quantization error and 90-92% equal classes
            err = (out - out_cpu).norm() / out_cpu.norm()
            quant_err = (out_cpu - ref).norm() / ref.norm()
            assert err < 0.5 * quant_err
            assert (out.argmax(1) == out_cpu.argmax(1)).float().mean() >= 0.95
    assert [r["method"] for r in gpu_rows] == [r["method"] for r in cpu_rows]
    if dtype == torch.float64:
        assert gpu_rows == cpu_rows
    else:  # a test image changes class only where two logits nearly tie: at most 3% of them
        assert all(abs(g["accuracy"] - c["accuracy"]) <= 0.03 for g, c in zip(gpu_rows, cpu_rows))


def test_fold_bn_skips_a_batch_norm_over_flattened_features():
    """Conv2d → Flatten → BatchNorm1d(C·H·W) scales each (c, h, w) on its own, which no
    per-channel weight scale can do: fold_bn_scale_ raised 'The size of tensor a (2) must
    match the size of tensor b (72)' (and so did quantize_model). Now it leaves that
    batch-norm alone and the function is unchanged."""
    torch.manual_seed(0)
    model = _randomize_bn(torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.BatchNorm1d(2 * 6 * 6), torch.nn.ReLU(),
        torch.nn.Linear(72, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3)))
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    folded = C.fold_bn_scale_(copy.deepcopy(model))
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), atol=1e-5)
    assert torch.equal(folded[0].weight, model[0].weight)  # not foldable: untouched
    assert not torch.allclose(folded[4].weight, model[4].weight)  # Linear → BN1d(8): folded
    q = C.quantize_model(model, x, C.PTQConfig(4, 4, method="aciq"))
    assert q(x).shape == (16, 3)


def test_quantize_model_refuses_what_would_leave_layers_unquantized():
    """inputs shorter than the layers were zipped away: the layers past them kept float
    weights and no input quantizer; allocate="x" (a typo of "a" or "w") quantized without
    allocation. Both passed silently; now ValueErrors."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
                                torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(1))
    inputs = C.layer_inputs(model, x)
    with pytest.raises(ValueError, match="got 1 for 3 layers"):
        C.quantize_model(model, x, C.PTQConfig(4, 4), inputs=inputs[:1])
    with pytest.raises(ValueError, match="allocate must be"):
        C.quantize_model(model, x, C.PTQConfig(4, 4, method="aciq", allocate="x"))
    q = C.quantize_model(model, x, C.PTQConfig(4, 4, method="aciq", allocate="aw"), inputs=inputs)
    assert all(len(m._forward_pre_hooks) == 1 for m in C.quant_layers(q))


def test_empty_calibration_is_a_clear_error():
    """An empty calibration set ended in torch.cat()'s 'expected a non-empty list of Tensors'."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    for call in (lambda: C.layer_inputs(model, torch.empty(0, 4)),
                 lambda: C.quantize_model(model, torch.empty(0, 4), C.PTQConfig(4, 4))):
        with pytest.raises(ValueError, match="calibration data is empty"):
            call()


def test_clip_ranges_checks_bits():
    """clip_ranges(x, 0, "minmax") returned 0 bits and a range, and clip_ranges(x, 4.5)
    returned 4 bits (int() of the width): both passed on silently."""
    x = torch.randn(100, 4, generator=torch.Generator().manual_seed(0))
    for bad in (0, 4.5, 17):
        for method in ("minmax", "aciq"):
            with pytest.raises(ValueError, match="bits must be"):
                C.clip_ranges(x, bad, method)
    bits, _, _ = C.clip_ranges(x, 3.5, "aciq", dim=1, allocate=True)  # an average budget may be fractional
    assert bits.sum() == 14


def test_clip_ranges_channel_axis():
    """A dim past x's axes, or dim=0 of a 1-D tensor (one value a channel), raised IndexError
    'Dimension out of range' from inside the statistics; channel_scales of a 1-D tensor too.
    Now a dim out of range is a ValueError, and a 1-D tensor has one channel per value."""
    x = torch.randn(100, 4, generator=torch.Generator().manual_seed(0))
    for dim in (2, -3):
        with pytest.raises(ValueError, match="dim must be"):
            C.clip_ranges(x, 4, dim=dim)
    bits, lo, hi = C.clip_ranges(x, 4, "minmax", dim=-1)
    assert torch.equal(lo, x.amin(0)) and torch.equal(hi, x.amax(0))
    v = torch.tensor([-1.0, 0.5, 2.0])
    for method in ("minmax", "aciq"):
        bits, lo, hi = C.clip_ranges(v, 4, method, dim=0, relu=False)
        assert lo.shape == (3,) and (lo <= v).all() and (v <= hi).all() and (hi > lo).all()
        assert torch.allclose(quantize_uniform(v, 4, lo, hi), v)  # a channel's one value is kept
    with pytest.raises(ValueError, match="output-channel axis"):
        C.channel_scales(v)


def test_aciq_of_a_constant_tensor_gets_a_range():
    """ACIQ of a constant tensor, e.g. the weights of a zero-initialized layer, raised 'the
    tensor is constant: no scale to fit' from the choice of a prior (min–max and constant
    channels of a varying tensor worked): quantize_model with method="aciq" failed on such a
    model. Now the range is [c, c] widened, as with min–max, and the weights are kept."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
                                torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    torch.nn.init.zeros_(model[2].weight)
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(1))
    for per_channel in (True, False):
        q = C.quantize_model(model, x, C.PTQConfig(4, 4, method="aciq", per_channel=per_channel))
        assert torch.allclose(q[2].weight, model[2].weight, atol=1e-6)
    c = torch.full((3, 10), 2.5)
    for dim in (None, 0):
        bits, lo, hi = C.clip_ranges(c, 4, "aciq", dim=dim)
        assert (lo <= 2.5).all() and (hi >= 2.5).all() and (hi > lo).all()
        assert torch.allclose(quantize_uniform(c, 4, lo if dim is None else lo[:, None],
                                               hi if dim is None else hi[:, None]), c)
