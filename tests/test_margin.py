"""analysis.margin: max-margin reference, GD's approach to it, rates, multi-class, linear nets."""

import math

import numpy as np
import pytest

from analysis import data
from analysis import margin as M

# Known answer: z_n = y_n x_n with two support vectors (1, ±1/2) and the rest farther out, so
# ŵ = (1, 0) (margin 1, α = (1/2, 1/2)): KKT holds with ŵ = ½(1, ½) + ½(1, −½).
Z_KNOWN = np.array([[1.0, 0.5], [1.0, -0.5], [2.0, 1.0], [1.5, -2.0], [3.0, 0.3], [2.5, 2.5]])
Y_KNOWN = np.array([1, -1, 1, -1, -1, 1])
X_KNOWN = Y_KNOWN[:, None] * Z_KNOWN


def separable(n=40, d=2, seed=0, margin=0.5):
    X, y = data.load("separable", n=n, d=d, margin=margin, seed=seed)
    return X.double().numpy(), M.signed_labels(y)


# --------------------------------------------------------------------------- SVM reference

def test_svm_on_known_data():
    svm = M.hard_margin_svm(X_KNOWN, Y_KNOWN)
    np.testing.assert_allclose(svm.w, [1.0, 0.0], atol=1e-10)
    np.testing.assert_allclose(svm.direction, [1.0, 0.0], atol=1e-10)
    assert svm.margin == pytest.approx(1.0)
    assert list(svm.support) == [0, 1]
    np.testing.assert_allclose(svm.alpha[:2], [0.5, 0.5], atol=1e-10)
    np.testing.assert_allclose(M.max_margin_direction(X_KNOWN, Y_KNOWN), [1.0, 0.0], atol=1e-10)


@pytest.mark.parametrize("d", [2, 5])
def test_svm_satisfies_kkt_and_matches_sklearn(d):
    X, y = separable(n=60, d=d, seed=d)
    svm = M.hard_margin_svm(X, y)
    kkt = M.kkt_residuals(X, y, svm)
    assert max(kkt.values()) < 1e-8, kkt
    margins = (y[:, None] * X) @ svm.direction
    assert margins.min() == pytest.approx(svm.margin, rel=1e-9)
    np.testing.assert_allclose(margins[svm.support], svm.margin, rtol=1e-7)
    check = M.hard_margin_svm(X, y, method="sklearn")
    assert np.degrees(M.angle_between(svm.direction, check.direction)) < 1e-3
    assert check.margin == pytest.approx(svm.margin, rel=1e-5)
    assert set(check.support) == set(svm.support)


@pytest.mark.parametrize("scale", [1e-7, 1e-5, 1e3])
def test_svm_does_not_depend_on_the_scale_of_the_data(scale):
    """x → c·x gives ŵ → ŵ/c, γ → c·γ, α → α/c². The solver's test ‖r‖² = 1/(1 + ‖ŵ‖²) < 1e-12
    called data with ‖ŵ‖ > 10⁶ not separable (c = 1e-7), and lost digits before (ŵ off by
    6e-7 at c = 1e-5)."""
    svm = M.hard_margin_svm(scale * X_KNOWN, Y_KNOWN)
    np.testing.assert_allclose(scale * svm.w, [1.0, 0.0], atol=1e-12)
    assert svm.margin == pytest.approx(scale, rel=1e-12)
    np.testing.assert_allclose(scale**2 * svm.alpha[:2], [0.5, 0.5], rtol=1e-12)
    assert list(svm.support) == [0, 1]
    X, y = separable(n=30, d=4, seed=1)
    ref = M.multiclass_svm(X, (y > 0).astype(int))
    small = M.multiclass_svm(scale * X, (y > 0).astype(int))
    np.testing.assert_allclose(scale * small.w, ref.w, rtol=1e-9, atol=1e-12)


def test_labels_zero_one_and_torch_accepted():
    X, y = data.load("separable", n=30, d=3, seed=1)
    a = M.max_margin_direction(X, y)  # torch tensors, labels {0, 1}
    b = M.max_margin_direction(X.numpy(), 2 * y.numpy() - 1)
    np.testing.assert_allclose(a, b)


def test_not_separable_is_a_clear_error():
    X = np.array([[1.0, 0.0], [2.0, 0.0], [1.0, 1.0]])
    y = np.array([1, -1, 1])  # x_1 and x_2 on the same ray, opposite labels
    with pytest.raises(ValueError, match="not linearly separable"):
        M.hard_margin_svm(X, y)
    with pytest.raises(ValueError, match="not linearly separable"):
        M.gradient_descent(X, y, steps=10)
    with pytest.raises(ValueError, match="labels"):
        M.hard_margin_svm(X, np.array([2, 3, 2]))


# --------------------------------------------------------------------------- gradient descent

def test_vectorized_gd_equals_the_naive_loop():
    X, y = separable(n=12, d=3, seed=2)
    for loss in ("logistic", "exponential"):
        r = M.gradient_descent(X, y, loss=loss, steps=50, lr=0.05, record=[50])
        np.testing.assert_allclose(r.w[-1], M.gradient_descent_naive(X, y, loss, 50, 0.05),
                                   rtol=1e-12)


def test_gd_direction_gap_below_a_1_over_log_t_bound():
    r = M.gradient_descent(X_KNOWN, Y_KNOWN, steps=100_000, record=10)
    assert r.error[-1] == 0 and r.loss[-1] < 1e-3
    for t in (1_000, 100_000):  # two times far apart, one fixed constant
        i = r.at(t)
        assert r.t[i] == t
        assert r.distance[i] < 1.0 / math.log(t)
        assert np.degrees(r.angle[i]) < 60.0 / math.log(t)
    i, j = r.at(1_000), r.at(100_000)
    assert r.distance[j] < r.distance[i] * 0.8
    # w(t) − ŵ log t stays bounded and tends to w̃ (Soudry et al., Theorem 3)
    assert r.residual.max() < 5.0
    w_tilde = M.theory_residual(X_KNOWN, Y_KNOWN, r.svm, r.lr)
    rho = r.w[j] - math.log(100_000) * r.svm.w
    assert np.linalg.norm(rho - w_tilde) < 0.05 * np.linalg.norm(w_tilde) + 0.05


def test_rates_fit_the_theory():
    # The 1/log t law is asymptotic: points with margins within a few % of the support vectors'
    # delay it (their pull decays like t^−(m_n − 1)); on Z_KNOWN the others are ≥ 1.5 away.
    r = M.gradient_descent(X_KNOWN, Y_KNOWN, steps=100_000, record=10)
    gap = M.fit_rate(r.t, r.distance, "1/log t", decades=3)
    assert gap.r2 > 0.9 and gap.slope > 0 and abs(gap.intercept) < 0.05
    X, y = separable(n=40, d=2, seed=0)
    r = M.gradient_descent(X, y, steps=100_000, record=10)
    loss = M.fit_rate(r.t, r.loss, "1/t", decades=3)
    assert loss.r2 > 0.99 and -1.1 < loss.slope < -0.8
    theory = M.theory_loss(r.svm, r.lr, r.t[-1])
    assert r.loss[-1] == pytest.approx(theory, rel=0.25)
    i, j = r.at(10_000), r.at(100_000)  # ‖w(t)‖ grows like ‖ŵ‖ log t
    growth = (r.norm[j] - r.norm[i]) / math.log(r.t[j] / r.t[i])
    assert growth == pytest.approx(np.linalg.norm(r.svm.w), rel=0.2)


def test_fit_rate_recovers_an_exact_law():
    t = M.log_grid(10**6)[1:]
    f = M.fit_rate(t, 0.3 + 2.0 / np.log(t), "1/log t")
    assert (f.slope, f.intercept, f.r2) == pytest.approx((2.0, 0.3, 1.0))
    g = M.fit_rate(t, 5.0 / t, "1/t")
    assert g.slope == pytest.approx(-1.0) and g.predict(1e3) == pytest.approx(5e-3)
    with pytest.raises(ValueError, match="law"):
        M.fit_rate(t, t, "log")


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_other_optimizers_approach_the_svm(optimizer):
    X, y = separable(n=30, d=2, seed=3)
    r = M.gradient_descent(X, y, optimizer=optimizer, steps=20_000, record=5, batch_size=5)
    assert r.error[-1] == 0
    assert r.angle[-1] < 0.5 * r.angle[r.at(10)]
    assert np.degrees(r.angle[-1]) < 10


def test_exponential_loss_and_log_grid():
    X, y = separable(n=30, d=2, seed=4)
    r = M.gradient_descent(X, y, loss="exponential", steps=10_000, record=5)
    assert r.angle[-1] < r.angle[0] and np.all(np.diff(r.loss) <= 1e-12)
    t = M.log_grid(10**6, 10)
    assert t[0] == 1 and t[-1] == 10**6 and np.all(np.diff(t) > 0) and 50 < len(t) <= 61


def test_bad_step_sizes_give_clear_errors():
    X, y = separable(n=30, d=2, seed=5)
    beta = M.smoothness(X, y, "exponential")
    with pytest.raises(ValueError, match="stability limit"):
        M.gradient_descent(X, y, loss="exponential", lr=2.5 / beta, steps=10)
    # separable (w = (0.05, 1)), but the first big step along Σz_n puts z_3 far on the wrong side
    Z = np.array([[1.0, 0.0], [1.0, 0.0], [-0.9, 0.1]])
    beta = M.smoothness(Z, np.ones(3), "exponential")
    with pytest.raises(M.DivergenceError, match="diverged"):
        M.gradient_descent(Z, np.ones(3), loss="exponential", lr=50 / beta, steps=1000,
                           check_lr=False)
    with pytest.raises(ValueError, match="optimizer"):
        M.gradient_descent(X, y, optimizer="adam", steps=10)
    with pytest.raises(ValueError, match="loss"):
        M.gradient_descent(X, y, loss="hinge", steps=10)


# --------------------------------------------------------------------------- multi-class

def three_clusters(n=30, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = 3.0 * np.stack([np.cos(2 * np.pi * y / 3), np.sin(2 * np.pi * y / 3)], 1)
    return centres + 0.4 * rng.standard_normal((n, 2)), y


def test_multiclass_svm_and_cross_entropy_gd():
    from sklearn.svm import LinearSVC

    X, y = three_clusters()
    svm = M.multiclass_svm(X, y)
    S = X @ svm.w.T
    gaps = np.array([S[i, y[i]] - S[i, k] for i in range(len(y)) for k in range(3) if k != y[i]])
    assert gaps.min() == pytest.approx(1.0, abs=1e-8)
    stationarity = svm.w - sum(svm.alpha[i, k] * (np.eye(3)[y[i]] - np.eye(3)[k])[:, None] * X[i]
                               for i in range(len(y)) for k in range(3))
    assert np.abs(stationarity).max() < 1e-8
    cs = LinearSVC(multi_class="crammer_singer", fit_intercept=False, C=1e4, tol=1e-8,
                   max_iter=200_000).fit(X, y)
    assert np.degrees(M.angle_between(cs.coef_.ravel(), svm.w.ravel())) < 1.0
    r = M.gradient_descent_multiclass(X, y, steps=20_000, record=5)
    assert r.error[-1] == 0
    assert r.distance[-1] < 0.6 * r.distance[r.at(20)]
    assert r.distance[-1] < 1.0 / math.log(20_000)


# --------------------------------------------------------------------------- linear nets

@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("d", [7, 8])
def test_conv_net_predictor_is_the_product_of_its_layers(depth, d):
    rng = np.random.default_rng(depth * d)
    filters = rng.standard_normal((depth, d))
    beta = M.conv_net_predictor(filters)
    np.testing.assert_allclose(beta, M.conv_net_predictor_by_layers(filters), atol=1e-12)
    x = rng.standard_normal(d)
    h = x
    for w in filters[:-1]:  # the network itself, layer by layer: h ← w ∗ h
        h = np.array([sum(w[k] * h[(i - k) % d] for k in range(d)) for i in range(d)])
    assert filters[-1] @ h == pytest.approx(x @ beta)
    spectrum = np.abs(np.fft.fft(beta))
    np.testing.assert_allclose(spectrum, np.prod(np.abs(np.fft.fft(filters, axis=1)), 0),
                               atol=1e-9)


@pytest.mark.parametrize("kind", ["conv", "fc"])
def test_layer_gradients_match_finite_differences(kind):
    rng = np.random.default_rng(0)
    d, g = 6, rng.standard_normal(6)
    if kind == "conv":
        params = [rng.standard_normal((3, d))]
        f = lambda p: g @ M.conv_net_predictor(p[0])  # noqa: E731
        grads = [M._conv_grads(params[0], g)]
    else:
        params = [rng.standard_normal((d, d)), rng.standard_normal((d, d)), rng.standard_normal(d)]
        f = lambda p: g @ M.fc_net_predictor(p)  # noqa: E731
        grads = M._fc_grads(params, g)
    for p, gp in zip(params, grads):
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + 1e-6
            up = f(params)
            p[idx] = old - 1e-6
            num[idx] = (up - f(params)) / 2e-6
            p[idx] = old
        np.testing.assert_allclose(gp, num, atol=1e-6)


def test_fourier_sparsity_measure():
    d = 16
    assert M.fourier_sparsity(np.eye(d)[0]) == pytest.approx(0.0, abs=1e-12)  # flat spectrum
    assert M.fourier_sparsity(np.cos(2 * np.pi * 3 * np.arange(d) / d)) == pytest.approx(
        (4 - math.sqrt(2)) / 3)  # two conjugate frequencies
    assert M.fourier_sparsity(np.ones(d)) == pytest.approx(1.0)
    assert M.fourier_sparsity(7 * np.ones(d)) == pytest.approx(1.0)


def test_depth_makes_conv_nets_sparse_in_frequency_not_fc_nets():
    fb = M.fourier_bias(depths=(1, 2), d=12, n=4, seeds=[0, 1], steps=600)
    rows = {r["depth"]: r for r in fb.table()}
    assert rows[1]["conv"] == pytest.approx(rows[1]["fc"])  # depth 1: both the linear SVM
    assert rows[2]["conv"] > rows[1]["conv"] + 0.2
    assert abs(rows[2]["fc"] - rows[1]["fc"]) < 0.05
    assert rows[2]["fc_to_svm_deg"] < 10



def test_a_linear_net_whose_loss_explodes_is_a_divergence_not_a_result():
    """Lesson 05's Fourier-bias data, seed 4: at η = 0.5 the depth-3 conv net's loss jumps
    from 4.35 to 2e34 at t = 2 and ends infinite; the run was returned (and tabulated) as if
    it had converged. Now a DivergenceError; the default η = 0.25 converges on every seed."""
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((6, 16)), np.where(np.arange(6) % 2 == 0, 1.0, -1.0)
    with pytest.raises(M.DivergenceError, match="conv net of depth 3 diverged at t=2"):
        M.train_linear_net(X, y, 3, "conv", steps=1000, lr=0.5, seed=4)
    record = M.train_linear_net(X, y, 3, "conv", steps=1000, seed=4)
    assert np.all(np.isfinite(record.loss)) and record.loss[-1] < record.loss[0]
    assert record.margin[-1] > 0  # separates the data
    fb = M.fourier_bias(depths=(3,), seeds=range(8), steps=300)  # the lesson's 8 data sets
    assert len(fb.sparsity[("conv", 3)]) == 8 and max(fb.angle_bridge[3]) < 30

def test_bridge_solution():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5, 12)), np.array([1, -1, 1, -1, 1])
    svm = M.hard_margin_svm(X, y)
    np.testing.assert_allclose(M.bridge_solution(X, y, 1), svm.w)
    b2 = M.bridge_solution(X, y, 2)
    Z = y[:, None] * X
    assert (Z @ b2).min() == pytest.approx(1.0, abs=1e-6)
    l1 = lambda b: np.abs(M.fourier_coefficients(b)).sum()  # noqa: E731
    assert l1(b2) < l1(svm.w) - 1e-3
    assert M.fourier_sparsity(b2) > M.fourier_sparsity(svm.w)
    with pytest.raises(ValueError, match="depth"):
        M.bridge_solution(X, y, 0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bridge_solution_keeps_the_direction_of_a_start_that_does_not_separate(seed):
    """A start β0 with min y_n x_nᵀβ0 < 0 was divided by that negative number, i.e. flipped:
    from β0 a hair off a stationary point β* (one point just misclassified) the old code
    ended at another stationary point 65–86° away. A start orthogonal to the data (min ≈ 0)
    or zero came back infeasible or NaN without a word."""
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((6, 16)), np.where(np.arange(6) % 2 == 0, 1.0, -1.0)
    Z = y[:, None] * X
    b = M.bridge_solution(X, y, 3)
    k = int(np.argmin(Z @ b))
    b0 = b - 1.05 * (Z[k] @ b) * Z[k] / (Z[k] @ Z[k])  # point k now slightly misclassified
    assert (Z @ b0).min() < 0
    found = M.bridge_solution(X, y, 3, beta0=b0)
    assert np.degrees(M.angle_between(found, b)) < 1.0
    assert (Z @ found).min() == pytest.approx(1.0, abs=1e-6)
    orthogonal = np.linalg.svd(Z)[2][-1]  # Z·β0 ≈ 1e-16: was min margin −35 (L=2) or 0.75 (L=3)
    for depth in (2, 3):
        beta = M.bridge_solution(X, y, depth, beta0=orthogonal)
        assert (Z @ beta).min() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="beta0 must be a finite, nonzero vector.*zeros"):
        M.bridge_solution(X, y, 2, beta0=np.zeros(16))  # was NaN


def test_non_finite_inputs_are_a_value_error_naming_x():
    """NaN/inf in X reached scipy's "array must not contain infs or NaNs", a false
    "diverged; lower lr" (train_linear_net), a LinAlgError or an infinite β (smoothness)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    X[:, 0] += y
    k = np.arange(12) % 3
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[3, 2] = bad
        calls = (lambda X: M.hard_margin_svm(X, y), lambda X: M.gradient_descent(X, y, steps=10),
                 lambda X: M.smoothness(X, y), lambda X: M.train_linear_net(X, y, 2, steps=10),
                 lambda X: M.bridge_solution(X, y, 2), lambda X: M.multiclass_svm(X, k),
                 lambda X: M.gradient_descent_multiclass(X, k, steps=10))
        for call in calls:
            with pytest.raises(ValueError, match=r"X has 1 NaN or infinite .* index \(3, 2\)"):
                call(Xb)


def test_bad_values_raise_clear_errors():
    """Each of these used to be silently wrong or to fail with an unrelated message."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4))
    # labels 0.5 / 1.5 were truncated to 0 / 1 by astype(int) without a word
    with pytest.raises(ValueError, match="integers 0..K-1"):
        M.multiclass_svm(X, np.array([0.5, 1.5] * 6))
    with pytest.raises(ValueError, match="integers 0..K-1"):
        M.gradient_descent_multiclass(X, np.array([0.5, 1.5] * 6), steps=10)
    with pytest.raises(ValueError, match="at least two classes"):  # was "not enough values to unpack"
        M.multiclass_svm(X, np.zeros(12))
    np.testing.assert_array_equal(M.multiclass_labels(np.array([0.0, 2.0, 1.0])), [0, 2, 1])
    with pytest.raises(ValueError, match="equal length"):  # was an IndexError
        M.fit_rate(np.arange(1, 101), np.ones(50))
    with pytest.raises(ValueError, match="nonzero"):  # was nan with a RuntimeWarning
        M.fourier_sparsity(np.zeros(8))
    with pytest.raises(ValueError, match="length >= 2"):  # was nan (0/0)
        M.fourier_sparsity(np.ones(1))
    y = np.where(np.arange(12) % 2 == 0, 1.0, -1.0)
    with pytest.raises(ValueError, match="depth must be a positive integer"):  # was a TypeError
        M.train_linear_net(X, y, 2.5, steps=10)
    with pytest.raises(ValueError, match="lr must be > 0"):  # was gradient ascent
        M.train_linear_net(X, y, 2, steps=10, lr=-0.5)
    with pytest.raises(ValueError, match=r"filters must be \(L, d\)"):  # was an IndexError
        M.conv_net_predictor(np.ones(4))
    # steps=10.5 ran 10 steps; record=[2.5] and record=[] were accepted or failed deep inside
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        M.gradient_descent(X, y, steps=10.5)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        M.train_linear_net(X, y, 2, steps=0)
    for record in ([2.5], [], [0, 5], [11]):
        with pytest.raises(ValueError, match=r"iterations in 1..steps=10"):
            M.gradient_descent(X, y, steps=10, record=record)
    ys = np.where(X[:, 0] > 0, 1.0, -1.0)  # separable through the origin
    np.testing.assert_array_equal(M.gradient_descent(X, ys, steps=10, record=[1, 10]).t, [1, 10])


def test_lesson05_solution_states_run2_loss_ratio():
    """Solution 3 quotes run2's loss / theory ratio; it must be the measured one."""
    import re
    from pathlib import Path

    import nbformat

    X, y = data.load("separable", n=40, d=2, margin=0.5, seed=3)
    X, y = X.double().numpy(), M.signed_labels(y)
    svm = M.hard_margin_svm(X, y)
    run2 = M.gradient_descent(X, y, steps=M.SETTINGS["normal"]["steps"], svm=svm,
                              record=[10**6])
    ratio = run2.loss[-1] / M.theory_loss(svm, run2.lr, run2.t[-1])
    nb = nbformat.read(Path(__file__).parents[1] / "lessons" / "05_implicit_bias.ipynb", 4)
    stated = float(re.search(r"ratio is ([\d.]+) for `run2`", nb.cells[-1].source).group(1))
    assert stated == pytest.approx(ratio, abs=0.005)



def test_a_bad_start_w0_is_a_value_error_naming_w0():
    """w0 of the wrong length was numpy's 'cannot reshape array of size 3 into shape (2,)' (a
    matmul error in smoothness); a NaN in w0 read as 'lr must be > 0, got nan'."""
    with pytest.raises(ValueError, match=r"w0 must be a vector of length d=2.*\(3,\)"):
        M.gradient_descent(X_KNOWN, Y_KNOWN, steps=10, w0=np.zeros(3))
    with pytest.raises(ValueError, match=r"w0 must be a vector of length d=2"):
        M.smoothness(X_KNOWN, Y_KNOWN, "exponential", w0=np.zeros(3))
    for loss in ("logistic", "exponential"):
        with pytest.raises(ValueError, match="w0 has NaN"):
            M.gradient_descent(X_KNOWN, Y_KNOWN, loss=loss, steps=10, w0=[np.nan, 0.0])
    r = M.gradient_descent(X_KNOWN, Y_KNOWN, steps=10, w0=[[0.5, 0.0]])  # any shape of d values
    assert r.w.shape == (len(r.t), 2) and np.all(np.isfinite(r.w))


def test_exponential_start_with_an_underflowing_or_overflowing_loss_is_a_value_error():
    """At a w0 with margins beyond ±709, e^{−m} is 0 or inf in float64: β = L(w0)·max‖z_n‖² read
    0 (ZeroDivisionError for lr = 1/β) or inf (then 'lr must be > 0, got 0.0')."""
    for scale, word in ((1000.0, "is 0"), (-1000.0, "is infinite")):
        w0 = [scale, 0.0]  # ŵ = (1, 0): every margin is ±1000 or more
        with pytest.raises(ValueError, match=f"exponential loss at w0 {word}.*smaller w0"):
            M.smoothness(X_KNOWN, Y_KNOWN, "exponential", w0=w0)
        with pytest.raises(ValueError, match=f"exponential loss at w0 {word}"):
            M.gradient_descent(X_KNOWN, Y_KNOWN, loss="exponential", steps=10, w0=w0)
    # a start with large but representable margins still runs, with β = L(w0)·max‖z_n‖²
    r = M.gradient_descent(X_KNOWN, Y_KNOWN, loss="exponential", steps=10, w0=[50.0, 0.0])
    Z = Y_KNOWN[:, None] * X_KNOWN
    assert r.beta == pytest.approx(np.mean(np.exp(-Z @ [50.0, 0.0])) * np.max(np.sum(Z**2, 1)))


@pytest.mark.parametrize("law", ["1/log t", "1/t"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fit_rate_refuses_non_finite_values(law, bad):
    """A NaN among the fitted values gave slope = intercept = NaN with r2 = 1.0 ("1/log t"),
    or was dropped without a word ("1/t", like the values ≤ 0 it leaves out)."""
    t = M.log_grid(10**4)[1:]
    values = 0.1 + 2.0 / np.log(t)
    values[5] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        M.fit_rate(t, values, law)
    values[5] = 0.1 + 2.0 / np.log(t[5])
    assert math.isfinite(M.fit_rate(t, values, law).slope)
    values[0] = bad  # t = 2, outside the last two decades: not fitted, so no error
    assert t[0] < t[-1] / 100 and math.isfinite(M.fit_rate(t, values, law, decades=2).slope)


def test_an_svm_or_data_of_another_shape_is_a_value_error():
    """A given svm of another dimension failed with numpy's broadcast error only after all the
    steps had run; one with fewer classes was an IndexError; evaluate on data of another d a
    matmul gufunc error."""
    other = M.hard_margin_svm(np.c_[X_KNOWN, X_KNOWN[:, :1]], Y_KNOWN)  # d = 3
    with pytest.raises(ValueError, match=r"svm is not the SVM of these data.*\(3,\).*d=2"):
        M.gradient_descent(X_KNOWN, Y_KNOWN, steps=10, svm=other)
    r = M.gradient_descent(X_KNOWN, Y_KNOWN, steps=10, svm=M.hard_margin_svm(X_KNOWN, Y_KNOWN))
    with pytest.raises(ValueError, match="d=3 features"):
        M.evaluate(r, np.c_[X_KNOWN, X_KNOWN[:, :1]], Y_KNOWN)
    assert M.evaluate(r, X_KNOWN, Y_KNOWN)["error"].shape == r.t.shape
    X, y = three_clusters()
    two = M.multiclass_svm(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match=r"multi-class SVM of these data.*3 classes"):
        M.gradient_descent_multiclass(X, y, steps=10, svm=two)
    with pytest.raises(ValueError, match=r"multi-class SVM of these data"):
        M.gradient_descent_multiclass(X, y, steps=10, svm=M.hard_margin_svm(X_KNOWN, Y_KNOWN))


# --------------------------------------------------------------------------- mutation audit

def test_kkt_residuals_measure_each_condition_independently():
    """kkt_residuals: 0 at the SVM, and α on an off-margin point shows up as slackness α_n|z_nᵀŵ − 1|."""
    svm = M.hard_margin_svm(X_KNOWN, Y_KNOWN)
    assert max(M.kkt_residuals(X_KNOWN, Y_KNOWN, svm).values()) < 1e-9
    alpha = svm.alpha.copy()
    alpha[2] = 0.1  # z_2 = (2, 1): z_2ᵀŵ = 2, one unit off the margin
    bad = M.MaxMargin(w=svm.w, direction=svm.direction, margin=svm.margin, alpha=alpha,
                      support=svm.support)
    r = M.kkt_residuals(X_KNOWN, Y_KNOWN, bad)
    assert r["slackness"] == pytest.approx(0.1 * abs(Z_KNOWN[2] @ svm.w - 1.0))
    assert r["stationarity"] == pytest.approx(0.1 * np.linalg.norm(Z_KNOWN[2]))
    assert r["primal"] < 1e-12 and r["dual"] == 0


def test_full_batch_sgd_on_the_exponential_loss_is_gd():
    """sgd with batch_size = n takes the full-batch step w += (η/n) Σ e^{−z_nᵀw} z_n of the
    exponential loss."""
    X, y = separable(n=12, d=3, seed=2)
    r = M.gradient_descent(X, y, loss="exponential", optimizer="sgd", batch_size=12, steps=50,
                           lr=0.05, record=[50])
    np.testing.assert_allclose(r.w[-1], M.gradient_descent_naive(X, y, "exponential", 50, 0.05),
                               rtol=1e-10)


def test_fit_rate_r2_is_the_coefficient_of_determination():
    """fit_rate's r2 is 1 − SS_res/SS_tot of its linear fit (= squared correlation of x and v)."""
    t = M.log_grid(10**5)[1:].astype(float)
    noise = 0.02 * np.sin(np.arange(len(t)))
    f = M.fit_rate(t, 0.3 + 2.0 / np.log(t) + noise, "1/log t", decades=None)
    x, v = 1.0 / np.log(t), 0.3 + 2.0 / np.log(t) + noise
    assert f.r2 == pytest.approx(np.corrcoef(x, v)[0, 1] ** 2, rel=1e-9)
    assert f.r2 < 0.9999  # the noise is visible in it


def test_momentum_stability_limit_is_2_1_plus_mu_over_beta():
    """heavy ball accepts η up to 2(1 + μ)/β (not 2/β) and refuses η beyond it."""
    X, y = separable(n=30, d=2, seed=3)
    beta = M.smoothness(X, y)
    r = M.gradient_descent(X, y, optimizer="momentum", momentum=0.5, lr=2.5 / beta, steps=200,
                           record=[200])
    assert r.error[-1] == 0 and np.isfinite(r.loss[-1])
    with pytest.raises(ValueError, match=r"stability limit .*\(2\(1 \+ μ\)/β with smoothness"):
        M.gradient_descent(X, y, optimizer="momentum", momentum=0.5, lr=3.1 / beta, steps=10)
    with pytest.raises(ValueError, match=r"\(2/β with smoothness .* needs η < 2/β\."):
        M.gradient_descent(X, y, lr=2.1 / beta, steps=10)


def test_recorded_margin_is_min_margin_over_the_norm():
    """GDRecord.margin is min_n y_n x_nᵀw/‖w‖ (normalised by ‖w‖, not ‖w‖²) and stays ≤ γ."""
    X, y = separable(n=20, d=3, seed=1)
    r = M.gradient_descent(X, y, steps=2000, record=5)
    Z = y[:, None] * X
    expected = (r.w @ Z.T).min(axis=1) / np.linalg.norm(r.w, axis=1)
    np.testing.assert_allclose(r.margin, expected, rtol=1e-12)
    assert np.all(r.margin <= r.svm.margin + 1e-12)


def test_multiclass_record_margin_and_smoothness():
    """Multi-class GD: margin = min (w_{y_n} − w_k)ᵀx_n/‖W‖_F, and β = σ_max(X)²/(2n) is the
    exact λ_max of the cross-entropy Hessian at W = 0 for K = 2 (p = (½, ½))."""
    X, y = three_clusters()
    r = M.gradient_descent_multiclass(X, y, steps=500, record=3)
    S = r.w @ X.T  # (T, K, n)
    gaps = np.array([[S[i, y[n], n] - S[i, k, n] for n in range(len(y)) for k in range(3)
                      if k != y[n]] for i in range(len(r.t))])
    np.testing.assert_allclose(r.margin, gaps.min(1) / np.linalg.norm(r.w.reshape(len(r.t), -1),
                                                                      axis=1), rtol=1e-10)
    X2, y2 = X[y < 2], y[y < 2]
    n = len(X2)
    hessian = np.kron(np.array([[0.25, -0.25], [-0.25, 0.25]]), X2.T @ X2 / n)  # vec(W) row-major
    r2 = M.gradient_descent_multiclass(X2, y2, steps=10, record=[10])
    assert r2.beta == pytest.approx(np.linalg.eigvalsh(hessian).max(), rel=1e-10)


def test_move_point_puts_the_point_at_target_times_the_margin():
    """move_point(amount=1) leaves point n at margin target·γ along the old SVM direction."""
    X, y = 3.0 * X_KNOWN, Y_KNOWN  # γ = 3, so target·γ differs from target
    svm = M.hard_margin_svm(X, y)
    moved = M.move_point(X, y, 2, amount=1.0, target=0.5)
    assert y[2] * moved[2] @ svm.direction == pytest.approx(0.5 * svm.margin)
    np.testing.assert_array_equal(np.delete(moved, 2, 0), np.delete(X, 2, 0))
    new = M.hard_margin_svm(moved, y)  # inside the old margin: it now limits the SVM
    assert new.margin < svm.margin and 2 in new.support


def test_bridge_objective_is_what_bridge_solution_minimizes():
    """Σ_k |β̂_k|^{2/L} at margin 1: 1/γ² for the SVM at L = 1 (Parseval), the spectrum's ℓ1
    norm at L = 2, where the (convex) minimum is below every other separator's; scale-free."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5, 12)), np.array([1, -1, 1, -1, 1])
    svm = M.hard_margin_svm(X, y)
    assert M.bridge_objective(X, y, svm.w, 1) == pytest.approx(1 / svm.margin ** 2)
    assert M.bridge_objective(X, y, 7 * svm.w, 1) == pytest.approx(1 / svm.margin ** 2)
    b2 = M.bridge_solution(X, y, 2)
    assert M.bridge_objective(X, y, b2, 2) == pytest.approx(np.abs(M.fourier_coefficients(b2)).sum())
    gd = M.train_linear_net(X, y, 2, "conv", steps=500).beta[-1]
    assert M.bridge_objective(X, y, b2, 2) < min(M.bridge_objective(X, y, svm.w, 2),
                                                 M.bridge_objective(X, y, gd, 2))
    with pytest.raises(ValueError, match="separates the data"):
        M.bridge_objective(X, y, -svm.w, 2)


def test_fourier_bias_reports_the_objective_excess_with_the_angles():
    """A large angle to the ℓ1 point can hide a small excess (the ℓ1 ball is flat along its
    faces): the table gives both, the median and largest angle, and the median excess, which
    is ≥ 0 at L = 2 (the convex minimum) and ≈ 0 at L = 1 (GD → the SVM)."""
    fb = M.fourier_bias(depths=(1, 2), d=12, n=4, seeds=[0, 1, 2], steps=600)
    rows = {r["depth"]: r for r in fb.table()}
    for L in (1, 2):
        assert len(fb.excess[L]) == 3
        assert rows[L]["excess"] == pytest.approx(np.median(fb.excess[L]))
        assert rows[L]["conv_to_bridge_deg"] == pytest.approx(np.median(fb.angle_bridge[L]))
        assert rows[L]["conv_to_bridge_max_deg"] == max(fb.angle_bridge[L])
    assert min(fb.excess[2]) > -1e-6 and abs(rows[1]["excess"]) < 0.01
