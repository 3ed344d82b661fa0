"""Post-training quantization (analysis.clipping.ptq): BN folding, the quantized copy, the CLI."""

import json

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
