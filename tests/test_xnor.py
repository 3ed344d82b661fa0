"""Bit packing and the exact CPU reference of analysis.xnor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis import xnor


def random_pm1(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=shape)


SHAPES = [(1, 1, 1), (1, 7, 63), (5, 1, 64), (3, 4, 65), (17, 9, 100), (40, 33, 128),
          (8, 300, 129), (257, 3, 200), (2, 2, 1000)]


@pytest.mark.parametrize("m,n,k", SHAPES)
def test_reference_equals_float_product(m: int, n: int, k: int) -> None:
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    a, b = random_pm1(rng, m, k), random_pm1(rng, n, k)
    got = xnor.xnor_matmul(xnor.pack_bits(a), xnor.pack_bits(b), k)
    want = (a.astype(np.float64) @ b.T.astype(np.float64)).astype(np.int64)
    assert got.dtype == np.int32 and got.shape == (m, n)
    np.testing.assert_array_equal(got, want)


def test_reference_tiles_cover_large_outputs() -> None:
    """More rows and columns than one 256 x 256 tile, and K spanning several words."""
    rng = np.random.default_rng(1)
    m, n, k = 300, 520, 130
    a, b = random_pm1(rng, m, k), random_pm1(rng, n, k)
    got = xnor.xnor_matmul_cpu(xnor.pack_bits(a), xnor.pack_bits(b), k)
    np.testing.assert_array_equal(got, (a @ b.T).astype(np.int64))


def test_padding_bits_count_nothing() -> None:
    """Whatever the bits past K hold (here: random, different in A and B), C is unchanged."""
    rng = np.random.default_rng(4)
    m, n, k = 9, 11, 130
    a, b = xnor.pack_bits(random_pm1(rng, m, k)), xnor.pack_bits(random_pm1(rng, n, k))
    clean = xnor.xnor_matmul_cpu(a, b, k)
    junk = ~np.uint64((1 << (k % 64)) - 1)
    a2, b2 = a.copy(), b.copy()
    a2[:, -1] |= rng.integers(0, 2**63, m, dtype=np.int64).view(np.uint64) & junk
    b2[:, -1] |= rng.integers(0, 2**63, n, dtype=np.int64).view(np.uint64) & junk
    assert (a2 != a).any() and (b2 != b).any()
    np.testing.assert_array_equal(xnor.xnor_matmul_cpu(a2, b2, k), clean)
    assert (a2 != a).any()  # the caller's arrays are not masked in place


def test_gpu_kernel_choice() -> None:
    with pytest.raises(ValueError, match="kernel must be 'auto' or one of"):
        xnor.gpu_kernel("fast")
    assert xnor.gpu_kernel("popc") == "popc"
    if not torch.cuda.is_available():
        assert xnor.gpu_kernel() == "popc"  # no GPU: nothing runs, the portable kernel is named
    elif torch.cuda.get_device_capability()[0] >= 8:
        assert xnor.gpu_kernel() == "tc"
    else:
        with pytest.raises(ValueError, match="compute capability 8.0"):
            xnor.gpu_kernel("tc")


def test_gpu_kernel_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BITS_AND_BIAS_XNOR_KERNEL", "popc")
    assert xnor.gpu_kernel() == "popc"
    monkeypatch.setenv("BITS_AND_BIAS_XNOR_KERNEL", "bogus")
    with pytest.raises(ValueError, match="got 'bogus'"):
        xnor.gpu_kernel()


def test_torch_tensors_give_torch_results() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 70, generator=g)
    b = torch.randn(4, 70, generator=g)
    pa, pb = xnor.pack_bits(a), xnor.pack_bits(b)
    assert pa.dtype == torch.int64 and pa.shape == (6, 2)
    got = xnor.xnor_matmul(pa, pb, 70)
    want = torch.where(a >= 0, 1.0, -1.0) @ torch.where(b >= 0, 1.0, -1.0).T
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int32
    assert torch.equal(got, want.to(torch.int32))


def test_packing_layout_and_padding() -> None:
    x = -np.ones(70, dtype=np.float32)
    x[[0, 3, 64, 69]] = 1.0
    x[5] = 0.0  # sign(0) = +1
    (w0, w1) = xnor.pack_bits(x)
    assert w0 == np.uint64((1 << 0) | (1 << 3) | (1 << 5))
    assert w1 == np.uint64((1 << 0) | (1 << 5))  # bits 64 and 69; padding bits 70..127 stay 0
    assert xnor.pack_bits(np.ones(64)).dtype == np.uint64
    assert xnor.pack_bits(np.ones(64))[0] == np.uint64(2**64 - 1)


@pytest.mark.parametrize("shape", [(1,), (63,), (64,), (3, 65), (2, 3, 130)])
def test_round_trip(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    x.flat[0] = 0.0
    back = xnor.unpack_bits(xnor.pack_bits(x), shape[-1])
    np.testing.assert_array_equal(back, np.where(x >= 0, 1.0, -1.0))
    t = torch.from_numpy(x)
    assert torch.equal(xnor.unpack_bits(xnor.pack_bits(t), shape[-1]), torch.from_numpy(back))


def test_integer_inputs_pack_by_sign() -> None:
    x = np.array([[-3, 0, 2, -1]])
    np.testing.assert_array_equal(xnor.unpack_bits(xnor.pack_bits(x), 4), [[-1, 1, 1, -1]])


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((3, 0)), "non-empty last axis"),
        (np.float32(1.0), "non-empty last axis"),
        (np.array([1.0, np.nan]), "NaN"),
        (np.array(["a", "b"]), "real-valued"),
        (np.array([True, False]), "real-valued"),
    ],
)
def test_pack_rejects_bad_inputs(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        xnor.pack_bits(bad)


def test_matmul_rejects_bad_inputs() -> None:
    a = xnor.pack_bits(np.ones((3, 100)))
    b = xnor.pack_bits(np.ones((2, 100)))
    with pytest.raises(ValueError, match="k=200 needs 4 words per row, got 2"):
        xnor.xnor_matmul(a, b, 200)
    with pytest.raises(ValueError, match="positive integer"):
        xnor.xnor_matmul(a, b, 0)
    with pytest.raises(ValueError, match="positive integer"):
        xnor.xnor_matmul(a, b, 99.5)
    with pytest.raises(ValueError, match="2-d packed"):
        xnor.xnor_matmul(a[0], b, 100)
    with pytest.raises(ValueError, match="64-bit words"):
        xnor.xnor_matmul(a.astype(np.float64), b, 100)
    with pytest.raises(ValueError, match="both be numpy arrays or both torch"):
        xnor.xnor_matmul(torch.from_numpy(a.view(np.int64)), b, 100)
    with pytest.raises(ValueError, match="k=300 needs 5 words per row"):
        xnor.unpack_bits(a, 300)


def test_matmul_out_and_kernel_on_the_cpu() -> None:
    """CPU tensors: `out` receives the product, as on a GPU (it was ignored, left as it was,
    and a wrong out accepted), and `kernel` is checked (a typo ran on the CPU, failed on a GPU)."""
    a = xnor.pack_bits(torch.ones(3, 100))
    b = xnor.pack_bits(-torch.ones(2, 100))
    out = torch.zeros(3, 2, dtype=torch.int32)
    assert xnor.xnor_matmul(a, b, 100, out=out) is out
    assert (out == -100).all()
    for bad in (torch.zeros(3, 2), torch.zeros(2, 3, dtype=torch.int32), torch.zeros(7, dtype=torch.int32)):
        with pytest.raises(ValueError, match="out must be a contiguous \\(3, 2\\) torch.int32"):
            xnor.xnor_matmul(a, b, 100, out=bad)
    with pytest.raises(ValueError, match="out is for torch tensors"):
        xnor.xnor_matmul(a.numpy(), b.numpy(), 100, out=out)
    with pytest.raises(ValueError, match="kernel must be 'auto' or one of"):
        xnor.xnor_matmul(a, b, 100, kernel="fast")


# ------------------------------------------------------------------ packed inference


def make_bn(n: int, seed: int) -> torch.nn.BatchNorm1d:
    """An eval-mode batch-norm with nontrivial statistics: negative and zero γ included."""
    g = torch.Generator().manual_seed(seed)
    bn = torch.nn.BatchNorm1d(n)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(n, generator=g))
        bn.weight[:2] = 0.0
        bn.bias.copy_(torch.randn(n, generator=g))
        bn.running_mean.copy_(torch.randn(n, generator=g) * 8)
        bn.running_var.copy_(torch.rand(n, generator=g) * 50 + 0.5)
    return bn.eval()


def test_fold_bn_sign_equals_bn_on_every_integer() -> None:
    k, n = 100, 300
    bn = make_bn(n, 0)
    s, t = xnor.fold_bn_sign(bn, k)
    y = torch.arange(-k, k + 1, dtype=torch.float32)[:, None].expand(-1, n)
    with torch.no_grad():
        want = bn(y) >= 0
    got = s * y.to(torch.int32) >= t
    assert torch.equal(got, want)
    assert s.dtype == torch.int32 and t.dtype == torch.int32
    assert set(s.tolist()) == {-1, 1}
    # The paper's τ = μ − βσ/γ: for γ > 0 the integer threshold is ⌈τ⌉ except at float ties.
    gamma = bn.weight.detach().double()
    sigma = (bn.running_var.double() + bn.eps).sqrt()
    tau = bn.running_mean.double() - bn.bias.detach().double() * sigma / gamma
    up = (gamma > 0) & (tau.abs() < k)
    assert (t[up] == tau[up].ceil().to(torch.int32)).float().mean() > 0.99


def test_fold_bn_sign_tie_rule_sign_zero_is_plus_one() -> None:
    """BN(y) = 0 exactly at y = 5 (μ = 5, β = 0): sign(0) = +1 puts y = 5 on the +1 side."""
    bn = torch.nn.BatchNorm1d(2, eps=0.0).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, -2.0]))
        bn.running_mean.fill_(5.0)
    s, t = xnor.fold_bn_sign(bn, 10)
    assert s.tolist() == [1, -1] and t.tolist() == [5, -5]  # y ≥ 5, and y ≤ 5
    y = torch.tensor([[4.0, 4.0], [5.0, 5.0], [6.0, 6.0]])
    assert torch.equal(bn(y) >= 0, (s * y >= t))
    assert (bn(y)[1] == 0).all()


def test_fold_bn_sign_on_real_input() -> None:
    """k=None: float32 thresholds; values next to each threshold fall on the right side."""
    n = 200
    bn = make_bn(n, 1)
    s, t = xnor.fold_bn_sign(bn, None)
    assert t.dtype == torch.float32
    assert torch.isinf(t[:2]).all()  # γ = 0: the sign never changes
    g = torch.Generator().manual_seed(2)
    y = torch.randn(500, n, generator=g) * 30
    edge = s * t  # the value at which each rising/falling unit switches
    finite = torch.isfinite(edge)
    near = torch.stack([torch.nextafter(edge, edge - 1), edge, torch.nextafter(edge, edge + 1)])
    y = torch.cat([y, torch.where(finite, near, 0.0)])
    with torch.no_grad():
        assert torch.equal(s * y >= t, bn(y) >= 0)


@pytest.mark.parametrize("k", [None, 50])
def test_fold_bn_sign_with_zero_gamma_where_the_ends_overflow(k: int | None) -> None:
    """γ = 0: BN(y) = β for every y, so the unit's bit is sign(β). GhostBatchNorm1d computes
    (y − μ)/σ·γ + β, NaN = ∞·0 at the ends y = ±3.4e38 of the real-input range when σ < 1;
    the fold took the ends' NaN for the unit's sign and gave −1 where β ≥ 0."""
    from analysis.layers import GhostBatchNorm1d

    bn = GhostBatchNorm1d(4, ghost_size=10).eval()
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.copy_(torch.tensor([0.5, -0.5, 0.0, 0.5]))
        bn.running_var.copy_(torch.tensor([0.25, 0.25, 0.25, 4.0]))
    s, t = xnor.fold_bn_sign(bn, k)
    y = torch.randn(1000, 4, generator=torch.Generator().manual_seed(5)) * 100
    y = y if k is None else y.round().clamp(-k, k)
    with torch.no_grad():
        assert torch.equal(s * y >= t, bn(y) >= 0)


def random_bnn(width: int = 96, depth: int = 2, seed: int = 0) -> torch.nn.Module:
    from analysis import models

    torch.manual_seed(seed)
    model = models.build("bnn-mlp", width=width, depth=depth)
    for i, m in enumerate(model):
        if isinstance(m, torch.nn.BatchNorm1d):
            model[i] = make_bn(m.num_features, seed + i)
    return model.eval()


def test_packed_scores_equal_torch_on_random_model() -> None:
    model = random_bnn()
    x = torch.randn(500, 1, 28, 28)
    packed = xnor.export_packed(model)
    with torch.no_grad():
        want = model(x)
    assert torch.equal(packed.scores(x), want)
    assert torch.equal(packed.predict(x), want.argmax(1))
    assert torch.equal(packed.predict(x, kernel="baseline"), want.argmax(1))
    assert [layer.k for layer in packed.layers] == [784, 96, 96]
    assert packed.layers[1].t.dtype == torch.int32 and packed.layers[-1].s is None


@pytest.mark.parametrize("depth", [0, 1])
def test_packed_scores_equal_torch_at_small_depth(depth: int) -> None:
    """depth 0 (one binary layer on real input, then the head) failed with a NoneType error."""
    model = random_bnn(depth=depth)
    x = torch.randn(200, 1, 28, 28)
    packed = xnor.export_packed(model)
    with torch.no_grad():
        want = model(x)
    assert len(packed.layers) == depth + 1
    assert torch.equal(packed.scores(x), want)
    assert torch.equal(packed.predict(x, kernel="baseline"), want.argmax(1))


def test_packed_predictions_equal_trained_model_on_mnist5k() -> None:
    from analysis import data, models
    from analysis.training import fit

    X, y = data.load("mnist5k", "train")
    Xt, yt = data.load("mnist5k", "test")
    torch.manual_seed(0)
    model = models.build("bnn-mlp", width=128, depth=2)
    fit(model, (X[:2000], y[:2000]), epochs=1, batch_size=100, lr=3e-3, loss="squared_hinge",
        progress=False)
    model.eval()
    with torch.no_grad():
        want = model(Xt).argmax(1)
    got = xnor.export_packed(model).predict(Xt)
    assert got.shape == (1000,)
    assert torch.equal(got, want)
    assert (got == yt).float().mean() > 0.4  # it learned something: the check is not vacuous


def test_packed_model_size() -> None:
    from analysis import models

    model = models.build("bnn-mlp", width=128, depth=2)  # K = 784, 128, 128
    packed = xnor.export_packed(model)
    report = xnor.size_report(model, packed)
    words = 128 * 13 + 128 * 2 + 10 * 2  # ⌈784/64⌉ = 13 words per first-layer row
    assert report["packed_weights"] == 8 * words
    assert report["float_weights"] == 4 * (784 * 128 + 128 * 128 + 128 * 10)
    assert 29 < report["weights_ratio"] < 32
    square = models.build("bnn-mlp", in_shape=(1, 8, 8), width=64, depth=2, num_classes=64)
    assert xnor.size_report(square, xnor.export_packed(square))["weights_ratio"] == 32.0


def test_packed_threshold_bytes_and_constant_units() -> None:
    """nbytes stores s as int8 and t as 4 bytes per hidden unit; a constant unit (γ = 0) gets s = +1."""
    from analysis import models

    packed = xnor.export_packed(models.build("bnn-mlp", width=128, depth=2).eval())
    assert packed.nbytes()["thresholds"] == 2 * 128 * (1 + 4)  # two hidden layers of 128 units
    bn = torch.nn.BatchNorm1d(2).eval()
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.copy_(torch.tensor([0.5, -0.5]))
    for k in (None, 10):
        s, _ = xnor.fold_bn_sign(bn, k)
        assert s.tolist() == [1, 1]


def test_export_rejects_other_models() -> None:
    from analysis import models
    from analysis.layers import BinarizedLinear

    with pytest.raises(ValueError, match="needs a bnn-mlp"):
        xnor.export_packed(models.build("mlp", width=16, depth=1))  # ReLU: an odd layer count
    with pytest.raises(ValueError, match="expected a BinarizedLinear"):
        xnor.export_packed(models.build("mlp", width=16, depth=0))
    with pytest.raises(ValueError, match="bias"):
        xnor.export_packed(torch.nn.Sequential(BinarizedLinear(8, 4, binary_input=False, bias=True),
                                               torch.nn.BatchNorm1d(4)))
    with pytest.raises(ValueError, match="first layer must take real input"):
        xnor.export_packed(torch.nn.Sequential(BinarizedLinear(8, 4), torch.nn.BatchNorm1d(4)))
    with pytest.raises(ValueError, match="input features"):
        xnor.export_packed(random_bnn(16, 1)).predict(torch.randn(3, 10))
    with pytest.raises(ValueError, match="kernel must be 'xnor', 'popc', 'tc' or 'baseline'"):
        xnor.export_packed(random_bnn(16, 1)).predict(torch.randn(3, 784), kernel="fast")


@pytest.mark.gpu
@pytest.mark.skipif(not xnor.gpu_available(), reason=f"needs a GPU backend: {xnor.gpu_status()}")
def test_gpu_packed_inference_equals_torch() -> None:
    model = random_bnn(width=300, depth=3).cuda()
    x = torch.randn(777, 1, 28, 28, device="cuda")
    with torch.no_grad():
        want = model(x)
    packed = xnor.export_packed(model).to("cuda")
    assert torch.equal(packed.predict(x), want.argmax(1))
    assert torch.equal(packed.predict(x, kernel="baseline"), want.argmax(1))
    assert torch.equal(packed.predict(x, kernel="popc"), want.argmax(1))
    if torch.cuda.get_device_capability()[0] >= 8:
        assert torch.equal(packed.predict(x, kernel="tc"), want.argmax(1))
    assert torch.equal(packed.scores(x), want)


# ------------------------------------------------------------------ benchmarks (CPU, tiny sizes)


def test_bench_xnor_cpu_writes_json(tmp_path) -> None:
    import json

    from analysis import bench

    path = tmp_path / "xnor.json"
    code = bench.xnor(["--device", "cpu", "--sizes", "64", "--batch", "16", "--width", "128",
                       "--repeat", "3", "--json", str(path)])
    result = json.loads(path.read_text())
    assert code == 0 and result["benchmark"] == "xnor" and result["device"] == "cpu"
    assert [(r["m"], r["n"], r["k"]) for r in result["rows"]] == [(64, 64, 64), (16, 128, 128),
                                                                  (16, 10, 128)]
    assert all(r["exact"] and r["ops_per_s"]["xnor"] > 0 for r in result["rows"])


def test_bench_bnn_inference_cpu(tmp_path) -> None:
    import json

    from analysis import bench

    path = tmp_path / "inference.json"
    code = bench.bnn_inference(["--device", "cpu", "--width", "32", "--depth", "1",
                                "--train-epochs", "0", "--batch", "50", "--repeat", "3",
                                "--json", str(path)])
    result = json.loads(path.read_text())
    assert code == 0 and result["exact"] == {"cpu": 1000}
    assert set(result["seconds"]) == {"xnor", "torch float"}


# ------------------------------------------------------------------ edge cases of the CPU paths


@pytest.mark.parametrize("m,n", [(0, 5), (4, 0), (0, 0)])
def test_empty_products(m: int, n: int) -> None:
    """An empty batch gives an empty (M, N) product; it failed inside the tiling (ZeroDivisionError
    for M = 0, 'range() arg 3 must not be zero' for N = 0)."""
    a, b = xnor.pack_bits(np.ones((m, 70))), xnor.pack_bits(np.ones((n, 70)))
    got = xnor.xnor_matmul(a, b, 70)
    assert got.shape == (m, n) and got.dtype == np.int32


def test_packed_model_on_an_empty_batch() -> None:
    """A batch of 0 digits (x[mask] with no match) gives 0 predictions; it failed in reshape."""
    packed = xnor.export_packed(random_bnn(16, 1))
    assert packed.predict(torch.empty(0, 1, 28, 28)).shape == (0,)
    assert packed.scores(torch.empty(0, 784), kernel="baseline").shape == (0, 10)


def test_packed_model_refuses_what_is_not_a_tensor() -> None:
    """A numpy batch was "'numpy.ndarray' object has no attribute 'to'"."""
    packed = xnor.export_packed(random_bnn(16, 1))
    for f in (packed.predict, packed.scores):
        with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
            f(np.ones((2, 784), dtype=np.float32))


def test_pack_bits_of_half_precision_tensors() -> None:
    """bfloat16 tensors pack like their float32 values (numpy has no bfloat16: it raised
    TypeError from inside torch); float16 too."""
    x = torch.randn(3, 100, generator=torch.Generator().manual_seed(3))
    x[0, :5] = torch.tensor([0.0, -0.0, 1e-30, -1e-30, -2.0])
    want = xnor.pack_bits(x)
    for dtype in (torch.bfloat16, torch.float16):
        assert torch.equal(xnor.pack_bits(x.to(dtype)), xnor.pack_bits(x.to(dtype).float()))
    assert torch.equal(xnor.pack_bits(x.to(torch.bfloat16))[1:], want[1:])


def test_pack_bits_refuses_complex_values() -> None:
    """Complex numbers have no sign; numpy ordered them lexicographically without a word."""
    with pytest.raises(ValueError, match="real-valued"):
        xnor.pack_bits(np.array([1 + 1j, -1j]))
    with pytest.raises(ValueError, match="real-valued"):
        xnor.pack_bits(torch.tensor([1 + 1j, -1j]))


def test_gpu_info_keeps_the_driver_when_the_clock_is_not_reported(monkeypatch) -> None:
    """_gpu_info on a stand-in GPU: the popcount peak from SMs × clock × 16 popc × 32 bits × 2
    ops; a clock of "[N/A]" leaves the peak unknown but keeps the driver (it lost both)."""
    import subprocess
    import types

    from analysis import bench

    props = types.SimpleNamespace(name="Stand-in GPU", major=9, minor=0, multi_processor_count=132,
                                  total_memory=80 * 2**30)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    answer = {"stdout": "580.65.06, 1980\n"}
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: types.SimpleNamespace(stdout=answer["stdout"]))
    info = bench._gpu_info()
    assert info["driver"] == "580.65.06" and info["max_sm_clock_mhz"] == 1980.0
    assert info["popcount_peak_ops"] == 132 * 1980e6 * 16 * 32 * 2
    answer["stdout"] = "580.65.06, [N/A]\n"
    info = bench._gpu_info()
    assert info["driver"] == "580.65.06" and info["max_sm_clock_mhz"] is None
    assert "popcount_peak_ops" not in info


def test_bench_xnor_threads_are_restored_afterwards(tmp_path) -> None:
    """--threads is for the benchmark's run: lesson 02 calls bench.xnor(["--threads", "1", ...])
    and every later torch op of the notebook ran on one thread (set_num_threads was never undone)."""
    import json

    from analysis import bench

    before = torch.get_num_threads()
    asked = 1 if before != 1 else 2
    path = tmp_path / "xnor.json"
    try:
        bench.xnor(["--device", "cpu", "--sizes", "64", "--batch", "8", "--width", "64",
                    "--repeat", "3", "--threads", str(asked), "--json", str(path)])
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert after == before
    assert json.loads(path.read_text())["machine"]["threads"] == asked  # measured with --threads


@pytest.mark.parametrize("norm", ["BatchNorm1d", "GhostBatchNorm1d", "L1BatchNorm1d"])
def test_fold_bn_sign_needs_running_statistics(norm: str) -> None:
    """A batch-norm built with track_running_stats=False normalizes by each batch's statistics,
    even in eval mode: it has no fixed threshold. The fold failed with the batch-norm's own
    'more than 1 value per channel when training' / 'ghost_size 4 must divide the batch size 1'."""
    from analysis import layers, models

    make = {"BatchNorm1d": torch.nn.BatchNorm1d, "L1BatchNorm1d": layers.L1BatchNorm1d,
            "GhostBatchNorm1d": lambda n, **o: layers.GhostBatchNorm1d(n, ghost_size=4, **o)}[norm]
    bn = make(8, track_running_stats=False).eval()
    for k in (10, None):
        with pytest.raises(ValueError, match="running statistics.*track_running_stats=True"):
            xnor.fold_bn_sign(bn, k)
    model = models.build("bnn-mlp", in_shape=(6,), width=8, depth=1)
    model[2] = make(8, track_running_stats=False)
    with pytest.raises(ValueError, match="running statistics"):
        xnor.export_packed(model.eval())
