"""Tests of analysis.clipping: closed forms against quadrature and Monte Carlo, the paper's
table, bit allocation, bias correction, and clear errors."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from analysis import clipping as C
from analysis.quant import quantize_uniform

N = 10**6


@pytest.fixture(scope="module")
def samples():
    g = torch.Generator().manual_seed(0)
    u = torch.rand(N, generator=g, dtype=torch.float64) - 0.5
    laplace = -torch.sign(u) * torch.log1p(-2 * u.abs())  # inverse CDF of Laplace(0, 1)
    gaussian = torch.randn(N, generator=g, dtype=torch.float64)
    return {"laplace": laplace, "gaussian": gaussian}


def _quad_mse(alpha, bits, prior, relu=False):
    """The expected MSE by numerical quadrature, bin by bin: an oracle independent of the closed form."""
    pdf = stats.laplace.pdf if prior == "laplace" else stats.norm.pdf
    lo, hi = C.quant_range(alpha, bits, relu)
    d = (hi - lo) / 2**bits
    inner = [lo + k * d for k in range(1, 2**bits)]
    edges = [0.0 if relu else -math.inf] + [max(e, 0.0) if relu else e for e in inner] + [math.inf]
    return sum(integrate.quad(lambda x, c=lo + d * (k + 0.5): (x - c) ** 2 * pdf(x), edges[k], edges[k + 1],
                              epsabs=1e-15, epsrel=1e-12)[0] for k in range(2**bits))


@pytest.mark.parametrize("prior", C.PRIORS)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bits", [1, 3, 8])
def test_exact_mse_matches_quadrature(prior, relu, bits):
    a_star = C.optimal_alpha(bits, prior, exact=True, relu=relu)
    for alpha in (0.4, a_star, 2 * a_star):
        assert C.mse(alpha, 1.0, bits, prior, exact=True, relu=relu) == pytest.approx(
            _quad_mse(alpha, bits, prior, relu), rel=1e-8)


@pytest.mark.parametrize("prior", C.PRIORS)
def test_exact_mse_matches_monte_carlo(samples, prior):
    """Exact MSE vs the measured MSE of quantize_uniform on 10^6 samples, M = 1..8,
    α ∈ [0.5, 2]·α*. Within 2%, or within 4 Monte-Carlo standard errors where the tail beyond
    α holds so few samples that the measurement itself is noisier than 2% (Laplace, M ≥ 5,
    α ≤ α*: the few samples beyond α carry (x − α)², whose relative std is √5 per sample)."""
    x = samples[prior]
    scale = 2.0  # b = 2 or σ = 2: the closed form must scale as scale²
    for bits in range(1, 9):
        a_star = C.optimal_alpha(bits, prior, exact=True)
        for f in (0.5, 0.75, 1.0, 1.5, 2.0):
            alpha = f * a_star * scale
            err2 = (scale * x - quantize_uniform(scale * x, bits, -alpha, alpha)) ** 2
            measured, se = err2.mean().item(), err2.std().item() / math.sqrt(N)
            exact = C.mse(alpha, scale, bits, prior, exact=True)
            assert abs(exact - measured) <= max(0.02 * measured, 4 * se), (bits, f, exact, measured, se)
            if f >= 1.5 or se < 0.004 * measured:
                assert exact == pytest.approx(measured, rel=0.02), (bits, f)


@pytest.mark.parametrize("prior", C.PRIORS)
def test_paper_approximation_vs_exact(prior):
    """The flat-density approximation underestimates: by tens of percent at 1–3 bits, within
    3% from 6 bits up for α ≥ α* (below α* the clipping to α − Δ/2 instead of α dominates)."""
    for bits in range(1, 9):
        a_star = C.optimal_alpha(bits, prior)
        alphas = a_star * np.linspace(1.0, 2.0, 11)
        rel = C.mse(alphas, 1.0, bits, prior) / C.mse(alphas, 1.0, bits, prior, exact=True) - 1
        assert rel[0] < 0  # at α*: the approximation is optimistic
        if bits >= 6:
            assert np.abs(rel).max() < 0.03, (bits, rel)
        if bits <= 2:
            assert np.abs(rel[0]) > 0.2


@pytest.mark.parametrize("prior", C.PRIORS)
def test_optimal_alpha_matches_paper_table(prior):
    """Two decimals: the published values are the optimum rounded or truncated (2.559σ → 2.55σ)."""
    for bits, paper in C.PAPER_ALPHA[prior].items():
        a = C.optimal_alpha(bits, prior)
        assert paper in (round(a, 2), math.floor(a * 100) / 100), (bits, a, paper)


def test_optimal_alpha_properties():
    for prior in C.PRIORS:
        for bits in range(1, 9):
            approx, exact = C.optimal_alpha(bits, prior), C.optimal_alpha(bits, prior, exact=True)
            assert exact > approx  # the exact noise grows faster when clipping: clip less
            # the approximation's ReLU optimum is the symmetric one of one more bit
            assert C.optimal_alpha(bits, prior, relu=True) == pytest.approx(
                C.optimal_alpha(bits + 1, prior), rel=1e-6)
            a = np.linspace(0.5, 2, 7) * exact
            best = C.mse(exact, 1.0, bits, prior, exact=True)
            assert (C.mse(a, 1.0, bits, prior, exact=True) >= best - 1e-15).all()
    assert C.optimal_alpha(12, "laplace") > C.optimal_alpha(8, "laplace")


def test_mse_vectorized_and_scaling():
    alphas = np.array([1.0, 2.0, 3.0])
    bits = np.array([[2], [4]])
    out = C.mse_laplace(alphas, 1.0, bits, exact=True)
    assert out.shape == (2, 3)
    assert out[1, 2] == pytest.approx(C.mse_laplace(3.0, 1.0, 4, exact=True))
    assert C.mse_gaussian(6.0, 3.0, 3) == pytest.approx(9 * C.mse_gaussian(2.0, 1.0, 3))
    assert isinstance(C.mse_gaussian(1.0, 1.0, 2), float)


def test_sorted_tensor_equals_quantize_uniform(samples):
    x = samples["laplace"][:20000] * 0.7 + 0.1
    for bits in (1, 2, 4, 8):
        for relu in (False, True):
            xx = x.clamp_min(0) if relu else x
            st = C.SortedTensor(xx)
            alphas = np.array([0.5, 2.0, 5.0])
            expected = C.measured_mse(xx, alphas, bits, relu)
            assert st.mse(alphas, bits, relu) == pytest.approx(expected, rel=1e-9)


def test_relu_range_puts_a_level_at_zero():
    lo, hi = C.relu_range(3.0, 2)
    levels = quantize_uniform(torch.linspace(-1, 5, 1001, dtype=torch.float64), 2, lo, hi).unique()
    assert levels.numel() == 4 and levels[0].item() == pytest.approx(0.0, abs=1e-12)
    assert levels[-1].item() == pytest.approx(3.0 - (levels[1] - levels[0]).item() / 2)


def test_fit_prior_identifies_the_distribution(samples):
    lap = C.fit_prior(samples["laplace"] * 3 + 1)
    assert lap.best == "laplace" and lap.b == pytest.approx(3.0, rel=0.01)
    assert lap.mean == pytest.approx(1, abs=0.02)
    gau = C.fit_prior(samples["gaussian"] * 0.5)
    assert gau.best == "gaussian" and gau.sigma == pytest.approx(0.5, rel=0.01)
    assert gau.ks_gaussian < 0.01 < gau.ks_laplace
    assert gau.scale() == gau.sigma and gau.scale("laplace") == gau.b


def test_allocate_bits_keeps_budget_and_bounds():
    rng = np.random.default_rng(0)
    for budget in (1, 2, 3.5, 4, 6, 8):
        alphas = np.exp(rng.normal(0, 2, size=64))
        bits = C.allocate_bits(alphas, budget)
        assert bits.dtype.kind == "i" and bits.min() >= 1 and bits.max() <= 8
        assert bits.sum() == round(budget * 64)
        order = np.argsort(alphas)
        assert (np.diff(bits[order]) >= 0).all()  # wider channels never get fewer bits
    assert (C.allocate_bits(np.ones(10), 4) == 4).all()
    # the paper's rule lowers the MSE against uniform bits when the channels' scales differ
    scales = np.exp(rng.normal(0, 1, size=32))
    bits = C.allocate_bits(scales, 4)
    assert C.allocation_mse(scales, bits, "laplace") < C.allocation_mse(scales, 4, "laplace")


def test_allocate_bits_follows_the_two_thirds_power_rule():
    """Bins 2^(M_i) ∝ α_i^(2/3) (paper): α = 1, 8, 64 at 4 bits on average give 2, 4, 6 bits."""
    # α^(2/3) = 1, 4, 16 = 2^0, 2^2, 2^4: the continuous rule is already integer, M = B − 2 + (0, 2, 4)
    assert C.allocate_bits([1.0, 8.0, 64.0], 4).tolist() == [2, 4, 6]
    # the rule in closed form, M_i = B + (2/3)·log2 α_i − mean_j (2/3)·log2 α_j, wherever no bound binds
    alphas = 2.0 ** np.array([0.0, 1.5, 3.0, 4.5])  # (2/3)·log2 α = 0, 1, 2, 3
    assert C.allocate_bits(alphas, 4.5).tolist() == [3, 4, 5, 6]  # 4.5 − 1.5 + (0, 1, 2, 3)


def test_channel_scales_are_centred_per_channel():
    """b_c = mean|w_c − mean(w_c)| (paper's Laplace estimate): an offset of a channel changes nothing."""
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0], [11.0, 12.0, 13.0, 14.0], [-5.0, 5.0, -5.0, 5.0]])
    np.testing.assert_allclose(C.channel_scales(w), [1.0, 1.0, 5.0])


def test_bias_correction_matches_channel_means_and_stds():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(8, 3, 5, 5, generator=g) * 0.1 + 0.02
    w_q = quantize_uniform(w, 2, -0.12, 0.12)
    dims = (1, 2, 3)
    fixed = C.bias_correct(w_q, w)
    assert torch.allclose(fixed.mean(dims), w.mean(dims), atol=1e-6)
    assert not torch.allclose(w_q.mean(dims), w.mean(dims), atol=1e-4)
    both = C.bias_correct(w_q, w, scale=True)
    assert torch.allclose(both.mean(dims), w.mean(dims), atol=1e-6)
    assert torch.allclose(both.std(dims, unbiased=False), w.std(dims, unbiased=False), rtol=1e-4)


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="bits"):
        C.mse_laplace(1.0, 1.0, 0)
    with pytest.raises(ValueError, match="bits"):
        C.optimal_alpha(0, "laplace")
    with pytest.raises(ValueError, match="alpha must be > 0"):
        C.mse_gaussian(0.0, 1.0, 4)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        C.mse_gaussian([1.0, -1.0], 1.0, 4, exact=True)
    with pytest.raises(ValueError, match="prior"):
        C.optimal_alpha(4, "cauchy")
    with pytest.raises(ValueError, match="empty"):
        C.measured_mse(torch.empty(0), 1.0, 4)
    with pytest.raises(ValueError, match="empty"):
        C.fit_prior(torch.tensor([]))
    with pytest.raises(ValueError, match="NaN"):
        C.SortedTensor(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="NaN"):
        C.measured_mse(torch.tensor([1.0, float("nan")]), 1.0, 4)
    with pytest.raises(ValueError, match="budget"):
        C.allocate_bits([1.0, 2.0], 9)
    with pytest.raises(ValueError, match="alphas must be > 0"):
        C.allocate_bits([1.0, 0.0], 4)
    with pytest.raises(ValueError, match="same shape"):
        C.bias_correct(torch.zeros(2, 3), torch.zeros(3, 2))


def test_infinite_values_are_clear_errors():
    """An infinite α or scale used to give inf or NaN MSEs, and allocate_bits(…, inf) returned
    −9223372036854775807 bits per channel."""
    with pytest.raises(ValueError, match="alphas must be > 0 and finite"):
        C.allocate_bits([1.0, math.inf], 4)
    with pytest.raises(ValueError, match="alpha must be > 0 and finite"):
        C.mse_laplace(math.inf, 1.0, 4, exact=True)
    with pytest.raises(ValueError, match="scale .* must be > 0 and finite"):
        C.mse_gaussian(1.0, math.inf, 4)


def test_lesson_helpers(samples):
    grid = np.linspace(0.5, 10, 20)
    for prior in C.PRIORS:
        terms = C.mse_terms(grid, 2.0, 3, prior)
        assert terms["clipping"] + terms["rounding"] == pytest.approx(C.mse(grid, 2.0, 3, prior))
    small = {p: x[:100_000] for p, x in samples.items()}
    rows = C.compare_at_optimum(small, bits=(2, 6))
    expected = [("laplace", 2), ("laplace", 6), ("gaussian", 2), ("gaussian", 6)]
    assert [(r["prior"], r["bits"]) for r in rows] == expected
    assert all(abs(r["exact_vs_measured"]) < 0.1 and r["paper_vs_exact"] < 0 for r in rows)
    assert rows[0]["paper_vs_measured"] < -0.2
    # the column labelled "paper" holds the published α*, not the project's optimum (3.897 at 3 bits)
    assert [r["alpha_paper"] for r in C.compare_at_optimum(small, bits=(3, 9))[:2]] == [
        3.89, pytest.approx(C.optimal_alpha(9, "laplace"))]
    curves = C.curve_rows(small["gaussian"], "gaussian", bits=(2, 4), grid=grid)
    assert [c["bits"] for c in curves] == [2, 4] and curves[0]["measured"].shape == grid.shape
    text = C.format_rows(rows, {"prior": "{}", "bits": "{:d}", "alpha_exact": "{:.3f}"})
    assert text.splitlines()[0].split() == ["prior", "bits", "alpha_exact"] and len(text.splitlines()) == 5
    w = torch.randn(3, 50, generator=torch.Generator().manual_seed(0)) * torch.tensor([[1.0], [2.0], [4.0]])
    b = C.channel_scales(w)
    assert b.shape == (3,) and b[0] < b[1] < b[2]
    assert C.lesson_settings(True)["samples"] < C.lesson_settings(False)["samples"]


def test_fit_tensor_reads_relu_only_when_the_tensor_reaches_zero():
    """A positive tensor away from 0 was read as a ReLU output: N(10, 1) got centre 0 and a
    Laplace scale of 10. Now only a tensor with min = 0 is a ReLU output."""
    g = torch.Generator().manual_seed(0)
    shifted = C.fit_tensor(torch.randn(20_000, generator=g) + 10)
    assert not shifted.relu and shifted.prior == "gaussian"
    assert shifted.center == pytest.approx(10, abs=0.05) and shifted.scale == pytest.approx(1, abs=0.05)
    relu = C.fit_tensor(torch.randn(20_000, generator=g).relu())
    assert relu.relu and relu.center == 0 and relu.scale == pytest.approx(1, abs=0.05)
    with pytest.raises(ValueError, match="constant"):  # was a fit with scale 3, as if ReLU
        C.fit_tensor(torch.full((100,), 3.0))
    bits, lo, hi = C.clip_ranges(torch.randn(20_000, generator=g) + 10, 4)
    assert 5 < lo.item() < 10 < hi.item() < 15  # was [0, hi]: level 0 spent far from the data


def test_fit_prior_max_samples_below_one_is_an_error():
    """max_samples=0 drew no values: both KS distances were NaN (with a SciPy warning) and
    `best` said "gaussian"; a negative value raised numpy's 'negative dimensions'."""
    x = torch.randn(100, generator=torch.Generator().manual_seed(0))
    for bad in (0, -5, 2.5):
        with pytest.raises(ValueError, match="max_samples must be an integer >= 1"):
            C.fit_prior(x, max_samples=bad)
    fit = C.fit_prior(x, max_samples=50)
    assert np.isfinite([fit.ks_laplace, fit.ks_gaussian]).all()


def test_mse_terms_takes_one_scale():
    """An array of scales raised numpy's TypeError 'only 0-dimensional arrays can be converted
    to Python scalars' (or 'only length-1 arrays …')."""
    with pytest.raises(ValueError, match="scale must be one number"):
        C.mse_terms([1.0, 2.0], [1.0, 2.0], 4, "laplace")
    terms = C.mse_terms([1.0, 2.0], np.array([2.0]), 4, "gaussian")
    assert terms["clipping"] + terms["rounding"] == pytest.approx(C.mse([1.0, 2.0], 2.0, 4, "gaussian"))
