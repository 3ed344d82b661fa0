"""analysis.landscape: batched trainings, endpoint classes on constructed cases, Hessians, slices."""

import math

import pytest
import torch

from analysis import landscape as L

D = torch.float64


def small_data(n=16, d0=4, seed=0):
    return L.random_labels(n, d0, seed)


# --------------------------------------------------------------------------- constructed cases

def global_minimum():
    """Over-parameterized: generic W (6 units, 3 inputs), z solving σ(XWᵀ) z = y exactly."""
    g = torch.Generator().manual_seed(3)
    X = torch.randn(4, 3, generator=g, dtype=D)
    y = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=D)
    W = torch.randn(6, 3, generator=g, dtype=D)
    U = X @ W.T
    A = torch.where(U > 0, U, 0.1 * U)
    z = torch.linalg.lstsq(A, y.unsqueeze(1)).solution.squeeze(1)
    return X, y, W[None], z[None]


def saddle():
    """f = z σ(w·x) at z = 0, w = (1, 0): ∂L/∂z = −½ Σ_n y_n σ(w·x_n) = 0 because both samples
    have σ(w·x_n) = 1 and opposite labels; ∂L/∂w = 0 because z = 0; ∂²L/∂z∂w ≠ 0."""
    X = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=D)
    y = torch.tensor([1.0, -1.0], dtype=D)
    return X, y, torch.tensor([[[1.0, 0.0]]], dtype=D), torch.zeros(1, 1, dtype=D)


def suboptimal_minimum():
    """The hand-built V-shape minimum of `v_shape_example` (see its docstring)."""
    ex = L.v_shape_example()
    return ex["X"], ex["y"], ex["W_bad"], ex["z_bad"]


def measure(X, y, W, z):
    loss, err, gW, gz = L.loss_and_grad(W, z, X, y)
    gn = torch.sqrt(gW.pow(2).sum((1, 2)) + gz.pow(2).sum(1))
    lo, hi = L.hessian_extremes(W, z, X, y)
    return loss, err, gn, L.kink_margin(W, X), lo, hi


def test_constructed_global_minimum():
    X, y, W, z = global_minimum()
    loss, err, gn, kink, lo, hi = measure(X, y, W, z)
    assert loss.item() < 1e-25 and err.item() == 0 and gn.item() < 1e-12
    assert L.classify(err, loss, gn, kink, lo, hi) == ["global"]


def test_constructed_saddle():
    X, y, W, z = saddle()
    loss, err, gn, kink, lo, hi = measure(X, y, W, z)
    assert gn.item() == 0 and err.item() == 1.0 and kink.item() > 0.5
    assert lo.item() < -0.1 < hi.item()
    assert L.classify(err, loss, gn, kink, lo, hi) == ["saddle"]


def test_constructed_suboptimal_minimum():
    X, y, W, z = suboptimal_minimum()
    loss, err, gn, kink, lo, hi = measure(X, y, W, z)
    assert loss.item() == pytest.approx(4 / 9) and err.item() == pytest.approx(1 / 3)
    assert gn.item() < 1e-14 and lo.item() > -1e-12
    assert L.classify(err, loss, gn, kink, lo, hi) == ["suboptimal"]
    # a local minimum: no small random perturbation lowers the loss
    g = torch.Generator().manual_seed(0)
    dW = 1e-3 * torch.randn(500, 2, 2, generator=g, dtype=D)
    dz = 1e-3 * torch.randn(500, 2, generator=g, dtype=D)
    around, _, _, _ = L.loss_and_grad(W + dW, z + dz, X, y)
    assert around.min().item() >= loss.item() - 1e-15
    # and it is sub-optimal: the same two units elsewhere have zero error and a lower loss
    ex = L.v_shape_example()
    better, err_g, _, _ = L.loss_and_grad(ex["W_good"], ex["z_good"], X, y)
    assert err_g.item() == 0 and better.item() < 0.1 < loss.item()
    # with a barrier between them on the straight segment
    line = L.interpolate_1d(X, y, (W[0], z[0]), (ex["W_good"][0], ex["z_good"][0]))
    assert line["loss"].max() > loss.item() + 0.1


def test_classify_kink_and_not_converged():
    one = torch.ones(1, dtype=D)
    err, loss = 0.25 * one, 0.3 * one
    assert L.classify(err, loss, 1e-3 * one, 1e-8 * one, one, one) == ["kink"]
    assert L.classify(err, loss, 1e-3 * one, 0.1 * one, one, one) == ["not_converged"]
    assert L.classify(err, loss, 1e-9 * one, 1e-9 * one, one, one) == ["kink"]
    assert L.classify(0 * one, loss, 1.0 * one, 0.1 * one, one, one) == ["global"]


# --------------------------------------------------------------------------- gradient and Hessian

def random_point(n=12, d0=3, width=4, seed=1):
    X, y = small_data(n, d0, seed)
    W, z = L.init_params(2, d0, width, seed)
    return X, y, W, z


@pytest.mark.parametrize("loss", ["quadratic", "logistic"])
@pytest.mark.parametrize("activation", ["leaky_relu", "relu"])
def test_gradient_matches_autograd(loss, activation):
    X, y, W, z = random_point()
    slope = 0.0 if activation == "relu" else 0.1
    W.requires_grad_(True)
    z.requires_grad_(True)
    Ls, _, gW, gz = L.loss_and_grad(W, z, X, y, slope, loss)
    aW, az = torch.autograd.grad(Ls.sum(), (W, z))
    torch.testing.assert_close(gW, aW)
    torch.testing.assert_close(gz, az)


@pytest.mark.parametrize("loss", ["quadratic", "logistic"])
def test_hessian_matches_finite_differences(loss):
    X, y, W, z = random_point()
    H = L.hessians(W, z, X, y, loss=loss)
    P = W.shape[1] * (W.shape[2] + 1)
    assert H.shape == (2, P, P)
    theta = L.flatten(W, z)
    eps = 1e-6
    fd = torch.empty_like(H)
    for k in range(P):
        e = torch.zeros(P, dtype=D)
        e[k] = eps
        grads = []
        for sgn in (1, -1):
            Wk, zk = L.unflatten(theta + sgn * e, W.shape[2], W.shape[1])
            _, _, gW, gz = L.loss_and_grad(Wk, zk, X, y, 0.1, loss)
            grads.append(L.flatten(gW, gz))
        fd[:, :, k] = (grads[0] - grads[1]) / (2 * eps)
    torch.testing.assert_close(H, fd, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(H, H.transpose(1, 2))
    torch.testing.assert_close(H, L.hessian_reference(W, z, X, y, loss=loss))
    torch.testing.assert_close(L.hessians(W, z, X, y, activation="relu", loss=loss),
                               L.hessian_reference(W, z, X, y, activation="relu", loss=loss))


def test_lanczos_matches_exact_extremes():
    X, y, W, z = random_point(width=5)
    lo, hi = L.hessian_extremes(W, z, X, y, exact_max=10_000)
    lo_l, hi_l = L.hessian_extremes(W, z, X, y, exact_max=0)
    torch.testing.assert_close(lo_l, lo, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(hi_l, hi, atol=1e-7, rtol=1e-6)
    assert (lo < 0).all()  # a random point of this loss is not a minimum


@pytest.mark.parametrize("loss", ["quadratic", "logistic"])
def test_hessian_vector_product_matches_explicit_hessian(loss):
    from analysis.landscape.endpoints import _hessian_vector_product

    X, y, W, z = random_point(width=5)
    H = L.hessians(W, z, X, y, loss=loss)
    theta = L.flatten(W, z)
    V = torch.randn(3, theta.shape[1], generator=torch.Generator().manual_seed(0), dtype=D)
    for r in range(W.shape[0]):
        hvp = _hessian_vector_product(theta[r], X, y, W.shape[2], W.shape[1], 0.1, loss)
        for v in V:
            torch.testing.assert_close(hvp(v), H[r] @ v, atol=1e-12, rtol=1e-10)


def test_hessians_by_autodiff_raise_no_deprecation_warning():
    """Forward-over-reverse (torch.func.jvp / hessian) made torch script its jvp decompositions
    and warn "`torch.jit.script` is deprecated" (once per process, hence a fresh one)."""
    import subprocess
    import sys

    code = ("import torch; from analysis import landscape as L\n"
            "X, y = L.random_labels(12, 3, 1); W, z = L.init_params(2, 3, 5, 1)\n"
            "L.hessian_extremes(W, z, X, y, exact_max=0); L.hessian_reference(W, z, X, y)\n")
    out = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


# --------------------------------------------------------------------------- training

def test_batched_equals_independent_runs():
    X, y = small_data()
    kw = dict(max_steps=600, window=50, grad_tol=1e-5, classify_endpoints=False)
    many = L.train_many(X, y, 3, 4, seed=7, **kw)
    assert many.steps.min() > 0
    for r in range(4):
        one = L.train_many(X, y, 3, 1, seed=7 + r, **kw)
        torch.testing.assert_close(one.W[0], many.W[r], atol=1e-9, rtol=1e-7)
        torch.testing.assert_close(one.z[0], many.z[r], atol=1e-9, rtol=1e-7)
        assert one.steps[0] == many.steps[r] and one.reason[0] == many.reason[r]
    # the same through explicit initializations, with gradient descent
    gd = L.train_many(X, y, 3, 2, optimizer="gd", init=(many.W0[:2], many.z0[:2]), **kw)
    gd1 = L.train_many(X, y, 3, 1, optimizer="gd", init=(many.W0[1:2], many.z0[1:2]), **kw)
    torch.testing.assert_close(gd1.W[0], gd.W[1], atol=1e-9, rtol=1e-7)


def test_overparameterized_runs_reach_global_minima():
    X, y = small_data(n=12, d0=4)
    e = L.train_many(X, y, 12, 8, max_steps=3000)
    assert e.params / 12 == 5
    assert e.label == ["global"] * 8
    assert (e.error == 0).all() and e.loss.max() < 1e-4
    assert (e.rank == 12).all()
    s = e.summary()
    assert s["frac_global"] == 1.0 and s["P/N"] == 5.0 and s["runs"] == 8
    assert e.pattern.shape == (8, 12, 12) and e.pattern.dtype == torch.bool


def test_underparameterized_runs_keep_training_error():
    X, y = small_data(n=24, d0=2)
    e = L.train_many(X, y, 1, 6, max_steps=3000, loss="logistic", activation="relu")
    assert (e.error > 0).all()
    assert "global" not in e.label
    assert set(e.label) <= set(L.LABELS)


@pytest.mark.parametrize("exact_max", [600, 0])
def test_diverged_runs_are_not_converged_not_global(exact_max):
    """GD with too large a step: 5 of 8 runs blow up to NaN. A NaN output classifies nothing
    (error was 0, as y·NaN ≤ 0 is False, so they were labelled global); such a run is
    not converged, without a spectrum (with spectra="all" eigvalsh raised on the batch)."""
    X, y = small_data()
    kw = dict(optimizer="gd", lr=1.5, max_steps=300, hessian_max=exact_max)
    e = L.train_many(X, y, 4, 8, **kw)
    diverged = ~e.loss.isfinite()
    assert 0 < diverged.sum() < 8
    assert [r == "diverged" for r in e.reason] == diverged.tolist()  # stopped there, not at the cap
    assert (e.steps[diverged] < 300).all()
    assert (e.error[diverged] == 1).all()
    assert [lab for lab, d in zip(e.label, diverged) if d] == ["not_converged"] * diverged.sum()
    assert e.lam_min[diverged].isnan().all() and e.lam_max[diverged].isnan().all()
    assert e.lam_min[~diverged].isfinite().all() and e.lam_max[~diverged].isfinite().all()
    assert L.train_many(X, y, 4, 8, spectra="needed", **kw).label == e.label
    nan_out = torch.tensor([[math.nan, 2.0, -1.0]], dtype=D)
    assert L.training_error(nan_out, torch.ones(3, dtype=D)).tolist() == [2 / 3]


@pytest.mark.parametrize("n, d0, width, exact_max", [(8, 1, 1, 600), (12, 2, 3, 600),
                                                     (12, 2, 3, 0)])
def test_spectra_needed_gives_the_same_classes_and_eigenvalues(n, d0, width, exact_max):
    """spectra="needed" (the dashboard's) computes λ only where `classify` reads it: the same
    labels, and those λ bit for bit (P = 2, 9: matrices at offsets that are not multiples of
    64 bytes, where MKL's rounding depends on the offset; exact_max=0: Lanczos)."""
    X, y = L.random_labels(n, d0, 1)
    kw = dict(max_steps=1500, seed=3, hessian_max=exact_max)
    every = L.train_many(X, y, width, 30, **kw)
    needed = L.train_many(X, y, width, 30, spectra="needed", **kw)
    asked = L.needs_curvature(every.error, every.loss, every.grad_norm, every.kink)
    assert 0 < asked.sum() < 30  # some runs need their spectrum, some do not
    assert needed.label == every.label
    assert torch.equal(needed.lam_min[asked], every.lam_min[asked])
    assert torch.equal(needed.lam_max[asked], every.lam_max[asked])
    assert needed.lam_min[~asked].isnan().all() and needed.lam_max[~asked].isnan().all()
    assert L.classify(every.error, every.loss, every.grad_norm, every.kink,
                      needed.lam_min, needed.lam_max) == every.label


def test_hessian_extremes_of_some_runs():
    X, y, W, z = random_point(width=5)
    only = torch.tensor([False, True])  # of the 2 runs
    lo, hi = L.hessian_extremes(W, z, X, y)
    lo_s, hi_s = L.hessian_extremes(W, z, X, y, only=only)
    assert torch.equal(lo_s[only], lo[only]) and torch.equal(hi_s[only], hi[only])
    assert lo_s[~only].isnan().all() and hi_s[~only].isnan().all()
    none = L.hessian_extremes(W, z, X, y, only=torch.zeros(W.shape[0], dtype=torch.bool))
    assert all(t.isnan().all() for t in none)


@pytest.mark.parametrize("runs", [1, 3])
def test_endpoints_are_ordinary_tensors(runs):
    """The optimizer loop runs in torch.inference_mode; what it returns must not be
    inference tensors (they refuse in-place updates and autograd outside that mode)."""
    X, y = small_data()
    e = L.train_many(X, y, 3, runs, max_steps=50, classify_endpoints=False)
    for t in (e.W, e.z, e.steps):
        assert not t.is_inference()
    e.W.add_(0.0)
    e.z.add_(0.0)
    W = e.W.clone().requires_grad_()
    L.forward(W, e.z, X)[1].sum().backward()
    assert W.grad is not None


def test_bad_inputs_raise_clear_errors():
    X, y = small_data()
    with pytest.raises(ValueError, match="width must be a positive integer"):
        L.train_many(X, y, 0, 2)
    with pytest.raises(ValueError, match="runs must be a positive integer"):
        L.train_many(X, y, 2, 0)
    with pytest.raises(ValueError, match="non-empty"):
        L.train_many(torch.zeros(0, 4), torch.zeros(0), 2, 2)
    with pytest.raises(ValueError, match="±1"):
        L.train_many(X, (y > 0).double(), 2, 2)
    with pytest.raises(ValueError, match="activation must be one of"):
        L.train_many(X, y, 2, 2, activation="tanh")
    with pytest.raises(ValueError, match="loss must be one of"):
        L.train_many(X, y, 2, 2, loss="hinge")
    with pytest.raises(ValueError, match="spectra must be one of 'all', 'needed'"):
        L.train_many(X, y, 2, 2, spectra="some")
    with pytest.raises(ValueError, match="init must be"):
        L.train_many(X, y, 2, 2, init=L.init_params(3, 4, 2))
    with pytest.raises(ValueError, match="data must be one of"):
        L.make_data("cifar", 10, 2)



def test_bad_values_raise_instead_of_training_silently():
    """Each of these used to run (or fail deep inside torch) without saying what is wrong."""
    X, y = small_data()
    with pytest.raises(ValueError, match="width must be a positive integer, got 2.5"):
        L.train_many(X, y, 2.5, 2)  # was: TypeError from torch.empty
    with pytest.raises(ValueError, match="width must be a positive integer"):
        L.init_params(2, 4, 2.0)
    Xbad = X.clone()
    Xbad[0, 0] = math.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        L.train_many(Xbad, y, 2, 2, max_steps=10)  # was: LinAlgError from eigh
    for slope in (-0.5, 1.0, 2.0):  # was: trained a net that is not max(u, ρu)
        with pytest.raises(ValueError, match=r"slope ρ of the leaky ReLU must be in \[0, 1\)"):
            L.train_many(X, y, 2, 2, slope=slope, max_steps=10)
    with pytest.raises(ValueError, match="slope"):
        L.hessians(*L.init_params(1, 4, 2), X, y, slope=1.5)
    for decay in (-1.0, 0.0, 1.0, 2.0):  # was: negative or growing learning rates
        with pytest.raises(ValueError, match="lr_decay must be in"):
            L.train_many(X, y, 2, 2, lr_decay=decay, max_steps=10)
    W, z = L.init_params(1, 4, 2)
    for span in (0.0, -1.0):  # was: a degenerate or mirrored grid
        with pytest.raises(ValueError, match="span must be > 0"):
            L.slice_2d(X, y, W[0], z[0], span=span)
    # ReLU ignores `slope` (ρ = 0), and the boundary ρ = 0 is a valid leaky slope
    assert L.train_many(X, y, 2, 2, activation="relu", slope=5.0, max_steps=10).settings["slope"] == 0
    assert L.train_many(X, y, 2, 2, slope=0, max_steps=10).settings["slope"] == 0

def test_make_data_sets():
    for name in ("random", "teacher"):
        X, y = L.make_data(name, 40, 5, seed=1)
        assert X.shape == (40, 5) and X.dtype == D and set(y.tolist()) == {-1.0, 1.0}
    X2, y2 = L.make_data("teacher", 40, 5, seed=1)
    torch.testing.assert_close(X, X2)
    X, y = L.make_data("mnist5k", 30, 4)  # odd vs even digits on 4 principal components
    assert X.shape == (30, 4) and set(y.tolist()) == {-1.0, 1.0}
    torch.testing.assert_close(X.std(0), torch.ones(4, dtype=D))
    with pytest.raises(ValueError, match="components"):
        L.make_data("mnist5k", 5, 6)
    # n centred digits have n − 1 components: the n-th was rounding noise (singular value
    # ~1e-13) scaled up to unit variance, a feature that depends on the BLAS
    X, _ = L.make_data("mnist5k", 8, 7)
    assert torch.linalg.svdvals(X).min() > 1.0
    with pytest.raises(ValueError, match="more than the 7 principal components of 8"):
        L.make_data("mnist5k", 8, 8)


def test_markdown_table_shows_a_diverged_median_loss():
    """A sweep row of runs that diverged has median_loss NaN (or inf): the table shows it;
    it raised 'cannot convert float NaN to integer' after the whole sweep had run."""
    X, y = small_data()
    e = L.train_many(X, y, 4, 8, optimizer="gd", lr=1.5, max_steps=300, spectra="needed")
    row = {"data": "random", **e.summary()}
    assert math.isnan(row["median_loss"])
    lines = L.markdown_table([row, dict(row, median_loss=math.inf, mean_error=0.25)]).splitlines()
    col = L.TABLE_COLUMNS.index("median_loss") + 1
    assert [line.split("|")[col].strip() for line in lines[2:]] == ["nan", "inf"]
    assert lines[3].split("|")[L.TABLE_COLUMNS.index("mean_error") + 1].strip() == "0.25"


# --------------------------------------------------------------------------- slices

def test_interpolation_and_slice_pass_through_the_points():
    X, y, W, z = random_point()
    line = L.interpolate_1d(X, y, (W[0], z[0]), (W[1], z[1]), alphas=[0.0, 0.5, 1.0])
    ends = L.loss_and_grad(W, z, X, y)[0]
    torch.testing.assert_close(line["loss"][[0, 2]], ends)
    sl = L.slice_2d(X, y, W[0], z[0], span=0.5, points=5)
    assert sl["loss"].shape == (5, 5)
    torch.testing.assert_close(sl["loss"][2, 2], ends[0])
    dW, dz = L.filter_normalized_direction(W[0], z[0], seed=3)
    torch.testing.assert_close(dW.norm(dim=1), W[0].norm(dim=1))
    assert math.isclose(dz.norm().item(), z[0].norm().item())


# --------------------------------------------------------------------------- command line

def test_experiment_cli_writes_table_and_figures(tmp_path, monkeypatch, capsys):
    import json

    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setitem(L.SWEEPS, "fast", dict(n=12, d0=3, widths=(1, 2, 8), runs=4,
                                               max_steps=300, data=("random", "teacher")))
    assert L.experiment_cli(["--fast", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "minima.json").read_text())["rows"]
    assert [(r["data"], r["d1"]) for r in rows] == [(d, w) for d in ("random", "teacher")
                                                     for w in (1, 2, 8)]
    assert all(r["runs"] == 4 and len(r["errors"]) == 4 for r in rows)
    assert (tmp_path / "minima.csv").read_text().startswith("data,d1,P/N,runs,frac_global")
    for name in ("minima.md", "fractions.png", "errors.png", "slices.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| random | 8 | 2.667 | 4 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        L.experiment_cli(["--fast", "--data", "cifar", "--out", str(tmp_path)])


@pytest.mark.parametrize("args, message", [
    (["--runs", "0"], "argument --runs: must be >= 1, got 0"),
    (["--runs", "two"], "argument --runs: not an integer: 'two'"),
    (["--out", "{file}"], "argument --out: {file} is a file, not a folder"),  # was: [Errno 17] File exists
    (["--out", "{file}/minima"], "argument --out: {file} is a file: no folder {file}/minima can be made"),
])
def test_experiment_cli_bad_runs_or_out_is_an_argparse_error(tmp_path, monkeypatch, capsys, args, message):
    """One argparse line and exit 2 before any training (the sweep would fail the test)."""
    file = tmp_path / "file"
    file.write_text("")
    monkeypatch.setattr("analysis.landscape.experiment._sweep_rows",
                        lambda *a, **k: pytest.fail("the sweep ran"))
    with pytest.raises(SystemExit) as exit_:
        L.experiment_cli(["--fast", *[arg.format(file=file) for arg in args]])
    assert exit_.value.code == 2
    assert message.format(file=file) in capsys.readouterr().err
    assert file.read_text() == ""


TINY_SWEEP = dict(n=12, d0=3, widths=(1, 2, 8), runs=4, max_steps=300, data=("random", "teacher"))


def _sweep_interrupted_at(n, ran, monkeypatch):
    """Make the sweep's unit (one call of `sweep` per data set and width) append (data, widths)
    to `ran` and raise KeyboardInterrupt (Ctrl-C) at its n-th call (n=None: never)."""
    from analysis.landscape import experiment

    sweep = L.sweep

    def wrapped(data, widths, *args, **kwargs):
        ran.append((data, *widths))
        if len(ran) == n:
            raise KeyboardInterrupt
        return sweep(data, widths, *args, **kwargs)

    monkeypatch.setattr(experiment, "sweep", wrapped)


def _no_seconds(result):
    return {"settings": dict(result["settings"], seconds=None),
            "rows": [dict(r, seconds=None) for r in result["rows"]]}


def test_experiment_cli_resumes_from_the_rows_an_interrupted_sweep_finished(tmp_path, monkeypatch,
                                                                            capsys, exit_code_after_ctrl_c):
    """Ctrl-C during the 2nd (data, width) row: exit 130, one line, the partial file holds the
    1st row; the same command runs only the other 5, and its outputs are those of an
    uninterrupted sweep. (The old code kept nothing: it wrote only at the very end.)"""
    import json

    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setitem(L.SWEEPS, "fast", TINY_SWEEP)
    units = [(d, w) for d in ("random", "teacher") for w in (1, 2, 8)]
    a, b, ran = tmp_path / "a", tmp_path / "b", []

    _sweep_interrupted_at(2, ran, monkeypatch)
    assert exit_code_after_ctrl_c(L.experiment_cli, ["--fast", "--out", str(a)]) == 130
    partial = a / "minima.partial.json"
    assert capsys.readouterr().err == (f"\ninterrupted: 1 of 6 rows done, kept in {partial}; "
                                       "run the same command to go on\n")
    kept = json.loads(partial.read_text())["rows"]
    assert [(r["data"], r["d1"]) for r in kept] == units[:1]
    assert not (a / "minima.json").exists()

    ran.clear()
    _sweep_interrupted_at(None, ran, monkeypatch)
    assert L.experiment_cli(["--fast", "--out", str(a)]) == 0
    assert ran == units[1:]
    assert f"resuming: 1 of 6 rows done in {a}\n" in capsys.readouterr().out
    assert not partial.exists()

    ran.clear()
    assert L.experiment_cli(["--fast", "--out", str(b)]) == 0
    assert ran == units
    resumed, whole = (json.loads((d / "minima.json").read_text()) for d in (a, b))
    assert _no_seconds(resumed) == _no_seconds(whole)
    assert resumed["rows"][0]["seconds"] == kept[0]["seconds"]
    for name in ("fractions.png", "errors.png", "slices.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_experiment_cli_refuses_a_partial_sweep_of_other_settings(tmp_path, monkeypatch, capsys,
                                                                  exit_code_after_ctrl_c):
    monkeypatch.setitem(L.SWEEPS, "fast", TINY_SWEEP)
    ran = []
    _sweep_interrupted_at(2, ran, monkeypatch)
    assert exit_code_after_ctrl_c(L.experiment_cli, ["--fast", "--out", str(tmp_path)]) == 130
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        L.experiment_cli(["--fast", "--loss", "logistic", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert (f"error: {tmp_path / 'minima.partial.json'} holds an unfinished run with loss = "
            "'quadratic', not 'logistic': run with its settings to resume it, or choose another "
            "--out") in capsys.readouterr().err
    assert len(ran) == 2  # nothing ran


def test_bench_minima_runs_side_by_side(tmp_path, capsys):
    import json

    from analysis import bench

    out = tmp_path / "b.json"
    assert bench.minima(["--runs", "3", "--n", "12", "--d0", "3", "--width", "4",
                         "--max-steps", "200", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["max_weight_difference"] < 1e-12 and result["same_class"] == 3
    assert result["ratio"] > 0 and "ratio sequential / batched" in capsys.readouterr().out


def test_shipped_sweep_has_the_acceptance_rows():
    rows = L.shipped_sweep()["rows"]
    assert {r["data"] for r in rows} >= {"random", "teacher"}
    assert all(r["runs"] >= 100 for r in rows)
    for name in {r["data"] for r in rows}:
        mine = [r for r in rows if r["data"] == name]
        assert mine[0]["P/N"] < 0.5 and mine[0]["frac_nonzero_error"] == 1.0
        assert all(r["frac_nonzero_error"] == 0 for r in mine if r["P/N"] > 2)


def test_lesson06_dlm_claim_matches_its_table():
    """Section 4 says sub-optimal DLMs are near zero from two hidden units on, with the single
    unit the exception; check that against the committed (normal-mode) sweep table."""
    from pathlib import Path

    import nbformat

    nb = nbformat.read(Path(__file__).parents[1] / "lessons" / "06_local_minima.ipynb", 4)
    table = next(o["data"]["text/markdown"] for c in nb.cells if c.cell_type == "code"
                 for o in c.get("outputs", []) if "frac_suboptimal" in o.get("data", {})
                 .get("text/markdown", ""))
    head, *rows = [[x.strip() for x in r.strip("|").split("|")] for r in table.splitlines()
                   if not r.startswith("|---")]
    col = {name: i for i, name in enumerate(head)}
    sub = [(int(r[col["d1"]]), r[col["data"]], float(r[col["frac_suboptimal"]])) for r in rows]
    assert max(f for d1, _, f in sub if d1 >= 2) <= 0.05
    prose = next(c.source for c in nb.cells if "kinks between linear regions" in c.source)
    assert "near zero at every width" not in prose
    teacher_1 = next(f for d1, data, f in sub if d1 == 1 and data == "teacher")
    if 0.4 <= teacher_1 <= 0.6:
        assert "about half of the single-unit runs on teacher data" in prose
    random_1 = next(f for d1, data, f in sub if d1 == 1 and data == "random")
    assert ("none on its random labels" in prose) == (random_1 == 0)



def test_unknown_loss_names_raise_instead_of_computing_the_logistic_loss():
    """Any loss other than "quadratic" fell through to the logistic branch: loss="hinge" or
    "mse" returned the logistic loss, its gradient, Hessians and slices without a word."""
    X, y, W, z = random_point()
    for loss in ("hinge", "mse", "Quadratic"):
        with pytest.raises(ValueError, match="loss must be one of 'quadratic', 'logistic'"):
            L.loss_and_grad(W, z, X, y, loss=loss)
        with pytest.raises(ValueError, match="loss must be one of"):
            L.hessians(W, z, X, y, loss=loss)
        with pytest.raises(ValueError, match="loss must be one of"):
            L.hessian_extremes(W, z, X, y, loss=loss)
        with pytest.raises(ValueError, match="loss must be one of"):
            L.interpolate_1d(X, y, (W[0], z[0]), (W[1], z[1]), loss=loss)
        with pytest.raises(ValueError, match="loss must be one of"):
            L.slice_2d(X, y, W[0], z[0], loss=loss, points=3)
    # the two known losses keep their values: (1/2N)Σ(f − y)² and (1/N)Σ log(1 + e^{−yf})
    f = L.forward(W, z, X)[1]
    quad = L.loss_and_grad(W, z, X, y, loss="quadratic")[0]
    logi = L.loss_and_grad(W, z, X, y, loss="logistic")[0]
    torch.testing.assert_close(quad, 0.5 * ((f - y) ** 2).mean(1))
    torch.testing.assert_close(logi, torch.log1p(torch.exp(-y * f)).mean(1))


def test_loss_and_grad_checks_its_inputs():
    """loss_and_grad took anything: labels {0, 1} (every y = 0 counted as an error, the loss
    fitted 0), ρ = 1.5 (not max(u, ρu)), a z of one run broadcast over the runs of W, and a
    single net's W (d1, d0) failed deep inside torch or, with d1 = 1, gave wrong shapes."""
    X, y, W, z = random_point()
    with pytest.raises(ValueError, match="±1"):
        L.loss_and_grad(W, z, X, (y > 0).double())
    with pytest.raises(ValueError, match=r"slope ρ of the leaky ReLU must be in \[0, 1\)"):
        L.loss_and_grad(W, z, X, y, slope=1.5)
    for Wb, zb in ((W, z[:1]), (W[0], z[0]), (W[0, :1], z[0, :1]), (W[:, :, :2], z)):
        with pytest.raises(ValueError, match=r"W must have shape \(R, d1, d0\) with d0 = 3"):
            L.loss_and_grad(Wb, zb, X, y)
    # float32 parameters and numpy inputs are taken as float64, with the same values
    from_numpy = L.loss_and_grad(W.numpy(), z.numpy(), X.numpy(), y.numpy())
    torch.testing.assert_close(from_numpy, L.loss_and_grad(W, z, X, y))
    Wf, zf = W.float(), z.float()  # was: "expected m1 and m2 to have the same dtype"
    from_float = L.loss_and_grad(Wf, zf, X, y)
    assert all(g.dtype == D for g in from_float)
    torch.testing.assert_close(from_float, L.loss_and_grad(Wf.double(), zf.double(), X, y))
    # ρ = 0 (ReLU) is the boundary and valid
    assert L.loss_and_grad(W, z, X, y, slope=0.0)[0].shape == (2,)


def test_forward_checks_its_inputs_as_loss_and_grad_does():
    """forward checked nothing: one net's W (d1, d0) gave an IndexError, a W of another d0 a
    matmul shape error, a float32 W "expected m1 and m2 to have the same dtype"."""
    X, y, W, z = random_point()
    for Wb, zb in ((W[0], z[0]), (W[:, :, :2], z), (W, z[:1])):
        with pytest.raises(ValueError, match=r"W must have shape \(R, d1, d0\) with d0 = 3.*W\[None\]"):
            L.forward(Wb, zb, X)
    with pytest.raises(ValueError, match=r"X must be a non-empty \(N, d0\) matrix"):
        L.forward(W, z, X[0])
    with pytest.raises(ValueError, match=r"slope ρ of the leaky ReLU must be in \[0, 1\)"):
        L.forward(W, z, X, slope=1.5)
    U, f = L.forward(W.float(), z.float(), X)
    assert U.dtype == f.dtype == D
    torch.testing.assert_close((U, f), L.forward(W.float().double(), z.float().double(), X))
    assert f.shape == (2, len(X)) and U.shape == (2, len(X), W.shape[1])


def test_make_data_refuses_unknown_options_and_classes():
    """make_data dropped unknown options in silence (classs=(3, 5) gave the parity task,
    hiden=8 the default teacher), rounded hidden=2.5 down to 2, and classes=(3, 11) or (3, 3)
    returned digits of one class only, all labelled −1."""
    with pytest.raises(ValueError, match=r"make_data\('mnist5k'\) takes no option 'classs'; "
                                         "its options: classes"):
        L.make_data("mnist5k", 20, 3, classs=(3, 5))
    with pytest.raises(ValueError, match="takes no option 'hiden'"):
        L.make_data("teacher", 20, 3, hiden=8)
    with pytest.raises(ValueError, match="its options: none"):
        L.make_data("random", 20, 3, hidden=8)
    with pytest.raises(ValueError, match="hidden must be a positive integer, got 2.5"):
        L.make_data("teacher", 20, 3, hidden=2.5)
    for classes in ((3, 11), (3, 3), 3, "odd", (1, 2, 3), (True, 2)):
        with pytest.raises(ValueError, match="classes must be 'parity' or two different digits"):
            L.make_data("mnist5k", 20, 3, classes=classes)
    # the options that apply still work: two digit classes give both labels
    X, y = L.make_data("mnist5k", 20, 3, classes=(3, 5))
    assert X.shape == (20, 3) and set(y.tolist()) == {-1.0, 1.0}
    X, y = L.make_data("mnist5k", 20, 3, classes=[3, 5])
    assert set(y.tolist()) == {-1.0, 1.0}
    X8, _ = L.make_data("teacher", 20, 3, hidden=8)
    assert X8.shape == (20, 3)


def test_train_many_refuses_bad_settings():
    """threads=0 was a RuntimeError from torch.set_num_threads; a NaN initialization trained
    in silence to 'not_converged'; grad_tol or loss_floor < 0 (or NaN) kept every run from
    stopping or counting as critical; plateau_tol ≥ 1 decayed every run's rate each window
    (and stopped them all as 'plateau'), < 0 never."""
    X, y = small_data()
    kw = dict(max_steps=10)
    with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
        L.train_many(X, y, 2, 2, threads=0, **kw)
    W0, z0 = L.init_params(2, 4, 2)
    W0[1, 0, 0] = math.nan
    with pytest.raises(ValueError, match="init holds NaN or infinite"):
        L.train_many(X, y, 2, 2, init=(W0, z0), **kw)
    for name in ("grad_tol", "loss_floor"):
        for bad in (-1e-6, math.nan):
            with pytest.raises(ValueError, match=f"{name} must be >= 0"):
                L.train_many(X, y, 2, 2, **{name: bad}, **kw)
    for bad in (1.0, 2.0, -0.1, math.nan):
        with pytest.raises(ValueError, match=r"plateau_tol must be in \[0, 1\)"):
            L.train_many(X, y, 2, 2, plateau_tol=bad, **kw)
    # the boundaries are valid: no tolerance, and decay only when the loss does not fall
    e = L.train_many(X, y, 2, 2, grad_tol=0.0, loss_floor=0.0, plateau_tol=0.0, threads=None, **kw)
    assert e.reason == ["cap", "cap"] and (e.steps == 10).all()


def test_min_lr_at_or_above_lr_is_refused():
    """min_lr ≥ lr stopped every run at its first window as 'plateau' (rate < min_lr holds
    before any decay), however fast its loss was falling; NaN never stopped one."""
    X, y = small_data()
    for bad in (0.01, 0.05, -1.0, math.nan):  # lr is 0.01 (Adam's default)
        with pytest.raises(ValueError, match=r"min_lr must be in \[0, lr\) = \[0, 0.01\)"):
            L.train_many(X, y, 2, 2, min_lr=bad, window=10, max_steps=50)
    e = L.train_many(X, y, 2, 2, min_lr=0.0, window=10, max_steps=50, classify_endpoints=False)
    assert e.reason == ["cap", "cap"]  # min_lr = 0: no run stops for its learning rate


def trained_near_global_minima():
    """Endpoints of Adam on random labels at P/N = 2.5: losses 1e-9 to 1e-3, λ_min within
    1e-2 of 0 next to λ_max ~ 20..70."""
    X, y = small_data(16, 4)
    e = L.train_many(X, y, 8, 4, max_steps=3000, classify_endpoints=False)
    return X, y, e.W, e.z


@pytest.mark.parametrize("point", [suboptimal_minimum, global_minimum, trained_near_global_minima])
def test_lanczos_converges_where_lambda_min_is_near_zero(point):
    """At and near a critical point ∇²L has eigenvalues at or near 0 (w_j → c·w_j,
    z_j → z_j/c leaves f unchanged); eigsh(which="SA"), whose stopping test is relative to
    the Ritz value, raised ArpackNoConvergence there (runs 2 and 3 of the trained ones, P = 40).
    Lanczos must match the exact extremes to a small fraction of λ_max."""
    X, y, W, z = point()
    lo, hi = L.hessian_extremes(W, z, X, y, exact_max=10_000)
    lo_l, hi_l = L.hessian_extremes(W, z, X, y, exact_max=0)
    assert (lo.abs() < 1e-2).all()
    torch.testing.assert_close(hi_l, hi, atol=1e-7, rtol=1e-6)
    assert ((lo_l - lo).abs() <= 1e-7 * hi).all()


def test_summary_median_loss_is_the_median_of_an_even_number_of_runs():
    """torch.median gave the lower of the two middle losses (the sweep runs 100 runs a width);
    the median of an even count is their mean, and inf when one of them is inf."""
    import dataclasses
    import statistics

    X, y = small_data()
    e = L.train_many(X, y, 2, 4, max_steps=50, classify_endpoints=False)
    assert len(set(e.loss.tolist())) == 4
    assert e.summary()["median_loss"] == pytest.approx(statistics.median(e.loss.tolist()), rel=1e-15)
    losses = torch.tensor([1.0, 3.0, math.inf, math.inf], dtype=D)
    assert dataclasses.replace(e, loss=losses).summary()["median_loss"] == math.inf
    losses = torch.tensor([1.0, 3.0, 2.0, math.inf], dtype=D)
    assert dataclasses.replace(e, loss=losses).summary()["median_loss"] == 2.5


def test_endpoint_functions_check_shapes():
    """A single net's W (d1, d0), a W of another d0, a z of another run count, a mask of run
    indices or of another length failed deep in torch (einsum, matmul, unpacking), or, for
    classify, dropped the runs past the shortest input in silence; now ValueErrors."""
    X, y, W, z = random_point()
    for f in (L.hessians, L.hessian_reference, L.hessian_extremes):
        for bad in ((W[0], z[0]), (W[:, :, :2], z), (W, z[:1])):
            with pytest.raises(ValueError, match=r"W must have shape \(R, d1, d0\)"):
                f(*bad, X, y)
    for f in (L.kink_margin, L.pattern_rank):
        for bad in (W[0], W[:, :, :2]):
            with pytest.raises(ValueError, match=r"W must have shape \(R, d1, d0\)"):
                f(bad, X)
        assert f(W.float(), X).shape == (W.shape[0],)  # float32 weights are converted
    for only in (torch.tensor([0, 1]), torch.tensor([1]), torch.ones(3, dtype=torch.bool)):
        with pytest.raises(ValueError, match="only must be a bool mask of shape"):
            L.hessian_extremes(W, z, X, y, only=only)
    lo, hi = L.hessian_extremes(W, z, X, y, only=[False, True])
    assert lo.isnan().tolist() == [True, False]
    one, two = torch.ones(1, dtype=D), torch.ones(2, dtype=D)
    with pytest.raises(ValueError, match=r"must all have shape \(R,\)"):
        L.classify(0.5 * two, one, one, one, one, one)
    with pytest.raises(ValueError, match=r"must all have shape \(R,\)"):
        L.needs_curvature(0.5 * two, one, one, one)


def test_slices_check_their_points():
    """A W of another d0, nets of different widths, or a batch's W where one net's belongs
    failed in torch (matmul, broadcast errors); an infinite span, NaN alphas or NaN weights
    gave NaN losses in silence."""
    X, y, W, z = random_point()
    bad_points = ((W[0, :, :2], z[0]), (W, z), (W[0], z[0, :2]), (W[0] * math.nan, z[0]))
    for bad in bad_points:
        with pytest.raises(ValueError, match="start must be one net's W|start holds NaN"):
            L.interpolate_1d(X, y, bad, (W[1], z[1]))
        with pytest.raises(ValueError, match=r"\(W, z\) must be one net's W|\(W, z\) holds NaN"):
            L.slice_2d(X, y, *bad, points=3)
    with pytest.raises(ValueError, match="same width"):
        L.interpolate_1d(X, y, (W[0], z[0]), (W[1, :2], z[1, :2]))
    for alphas in ([0.0, math.nan], [[0.0, 1.0]]):
        with pytest.raises(ValueError, match="alphas must be a 1-D sequence of finite numbers"):
            L.interpolate_1d(X, y, (W[0], z[0]), (W[1], z[1]), alphas=alphas)
    with pytest.raises(ValueError, match="span must be > 0 and finite"):
        L.slice_2d(X, y, W[0], z[0], span=math.inf, points=3)
    assert L.slice_2d(X, y, W[0], z[0], span=1e3, points=3)["loss"].isfinite().all()


# --------------------------------------------------------------------------- mutation audit

@pytest.mark.parametrize("grad, kink, lam_min, lam_max, label", [
    (1e-6, 0.1, 1.0, 1.0, "suboptimal"),       # ‖∇L‖ = grad_tol is critical (≤)
    (1e-9, 1e-6, 1.0, 1.0, "suboptimal"),      # margin = kink_tol is not at a kink (<)
    (1e-9, 0.1, -5e-7, 1.0, "suboptimal"),     # λ_min within −psd_tol of 0: PSD
    (1e-9, 0.1, -5e-6, 10.0, "suboptimal"),    # the tolerance scales with |λ_max|
    (1e-9, 0.1, -2e-5, 10.0, "saddle"),        # beyond −psd_tol·|λ_max|
    (1e-3, 1e-4, 1.0, 1.0, "kink"),            # stalled within stall_kink_tol of a kink
    (1e-3, 2e-3, 1.0, 1.0, "not_converged"),   # stalled, but farther than stall_kink_tol
])
def test_classify_thresholds_follow_the_docstring(grad, kink, lam_min, lam_max, label):
    """classify's boundaries: ‖∇L‖ ≤ grad_tol, kink < kink_tol, λ_min < −psd_tol·max(1, |λ_max|),
    stall_kink_tol."""
    one = torch.ones(1, dtype=D)
    assert L.classify(0.25 * one, 0.3 * one, grad * one, kink * one, lam_min * one,
                      lam_max * one) == [label]


def test_loss_below_the_floor_is_global_even_with_training_errors():
    """classify and needs_curvature: loss ≤ loss_floor is global whatever the error; a kink needs no λ."""
    one = torch.ones(1, dtype=D)
    nan = math.nan * one
    assert L.classify(0.25 * one, 1e-11 * one, one, 0.1 * one, nan, nan) == ["global"]
    assert not L.needs_curvature(0.25 * one, 1e-11 * one, 1e-9 * one, 0.1 * one).item()
    assert not L.needs_curvature(0.25 * one, 0.3 * one, 1e-9 * one, 1e-8 * one).item()
    assert L.needs_curvature(0.25 * one, 0.3 * one, 1e-9 * one, 0.1 * one).item()


def test_filter_normalized_direction_matches_each_filter_norm():
    """Li et al.'s filter normalisation: ‖dw_j‖ = ‖w_j‖ for every unit j and ‖dz‖ = ‖z‖."""
    W = torch.tensor([[1.0, 0.0, 0.0], [0.0, 3.0, 4.0], [0.1, 0.1, 0.1]], dtype=D)
    z = torch.tensor([2.0, -1.0, 0.5], dtype=D)
    dW, dz = L.filter_normalized_direction(W, z, seed=0)
    torch.testing.assert_close(dW.norm(dim=1), W.norm(dim=1))
    assert dz.norm().item() == pytest.approx(z.norm().item())


def test_kink_margin_and_pattern_rank_on_a_hand_computed_net():
    """kink_margin = min |w_j·x_n|/(‖w_j‖‖x_n‖); pattern_rank = rank of the rows [σ'(w_j·x_n) x_n]_j."""
    X = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, -1.0]], dtype=D)
    # w_2 = (0, 1) is orthogonal to x_1 = (2, 0): a sample on a kink
    assert L.kink_margin(torch.tensor([[[1.0, 1.0], [0.0, 1.0]]], dtype=D), X).item() == 0.0
    W = torch.tensor([[[2.0, 1.0], [0.5, -3.0]]], dtype=D)  # w·x: (4, 1), (2, −6), (1, 3.5)
    rel = (X @ W[0].T).abs() / (X.norm(dim=1, keepdim=True) * W[0].norm(dim=1))
    assert L.kink_margin(W, X).item() == pytest.approx(rel.min().item())  # 1/(2‖w_2‖), at x_1
    # ReLU (ρ = 0): unit 2 is off on x_2, so the rows are (2, 0, 2, 0), (0, 2, 0, 0),
    # (1, −1, 1, −1): rank 3; all-ones patterns [x_n, x_n] would have rank 2
    assert L.pattern_rank(W, X, slope=0.0).item() == 3
    # leaky (ρ = 0.1): the row of x_2 becomes (0, 2, 0, 0.2), rank still 3 = N
    assert L.pattern_rank(W, X, slope=0.1).item() == 3


# --------------------------------------------------------------------------- stopping rules

def _one_training(X, y, W0, z0, optimizer, lr, max_steps, grad_tol, loss_floor, window,
                  plateau_tol, lr_decay, min_lr):
    """One run of train_many's docstring, written out step by step for a single net: at step t
    (after t − 1 updates) stop at L ≤ loss_floor ("floor") or ‖∇L‖ ≤ grad_tol ("gradient");
    every `window` steps multiply the rate by lr_decay unless L fell by the fraction
    plateau_tol since the window began (at step 1 for the first), and stop once the rate is
    below min_lr ("plateau"); else one Adam (β = 0.9, 0.999, bias-corrected; ε = 1e-12 as in
    the code) or gradient-descent update. After max_steps updates: "cap". Weights that are no
    longer finite stop the run at once ("diverged")."""
    W, z = W0.clone()[None], z0.clone()[None]
    m, v = [torch.zeros_like(W), torch.zeros_like(z)], [torch.zeros_like(W), torch.zeros_like(z)]
    rate, ref = lr, None
    for t in range(1, max_steps + 1):
        loss, _, gW, gz = L.loss_and_grad(W, z, X, y)
        loss, gnorm = loss.item(), math.sqrt(gW.pow(2).sum().item() + gz.pow(2).sum().item())
        if not (W.isfinite().all() and z.isfinite().all()):
            return W[0], z[0], t - 1, "diverged"
        if loss <= loss_floor:
            return W[0], z[0], t - 1, "floor"
        if gnorm <= grad_tol:
            return W[0], z[0], t - 1, "gradient"
        if t == 1:
            ref = loss
        if t % window == 0:
            if not loss <= ref * (1 - plateau_tol):
                rate *= lr_decay
            ref = loss
            if rate < min_lr:
                return W[0], z[0], t - 1, "plateau"
        new = []
        for i, (p, g) in enumerate(((W, gW), (z, gz))):
            if optimizer == "adam":
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                p = p - rate * (m[i] / (1 - 0.9 ** t)) / ((v[i] / (1 - 0.999 ** t)).sqrt() + 1e-12)
            else:
                p = p - rate * g
            new.append(p)
        W, z = new
    return W[0], z[0], max_steps, "cap"


@pytest.mark.parametrize("options", [
    # floor, gradient and cap in one batch (Adam, its default lr 0.01)
    dict(width=8, max_steps=500, grad_tol=1e-2, loss_floor=3e-2, window=40, plateau_tol=0.02,
         lr_decay=0.5),
    # every run decays to min_lr = lr·1e-4 (default) and stops on its plateau
    dict(width=2, max_steps=600, window=20, plateau_tol=0.5, lr_decay=0.5),
    # gradient descent, its default lr 0.5: plateau and cap
    dict(width=2, optimizer="gd", max_steps=500, window=30, plateau_tol=0.01, grad_tol=2e-3),
    # gradient descent at a given lr down to a loss floor
    dict(width=12, optimizer="gd", lr=0.2, max_steps=2000, loss_floor=1e-2, window=100),
    # the same at GD's default 0.5: one run diverges and stops there (it ran to the cap on NaN)
    dict(width=12, optimizer="gd", max_steps=2000, loss_floor=1e-2, window=100),
])
def test_train_many_follows_its_stopping_rules_step_by_step(options):
    """Each run of the batch ends where, why and with the weights that a one-net loop written
    from the docstring gives (default lr 0.01 for Adam and 0.5 for GD, min_lr = lr·1e-4)."""
    X, y = small_data(16, 4, seed=1)
    kw = dict(options)
    width = kw.pop("width")
    e = L.train_many(X, y, width, 4, seed=1, classify_endpoints=False, **kw)
    optimizer = kw.get("optimizer", "adam")
    lr = kw.get("lr", {"adam": 0.01, "gd": 0.5}[optimizer])
    rules = dict(optimizer=optimizer, lr=lr, max_steps=kw["max_steps"],
                 grad_tol=kw.get("grad_tol", 1e-6), loss_floor=kw.get("loss_floor", 1e-10),
                 window=kw["window"], plateau_tol=kw.get("plateau_tol", 1e-3),
                 lr_decay=kw.get("lr_decay", 0.3), min_lr=lr * 1e-4)
    assert e.steps.min() > 0
    for r in range(4):
        W, z, steps, reason = _one_training(X, y, e.W0[r], e.z0[r], **rules)
        assert (int(e.steps[r]), e.reason[r]) == (steps, reason)
        torch.testing.assert_close(e.W[r], W, atol=1e-10, rtol=1e-8, equal_nan=True)
        torch.testing.assert_close(e.z[r], z, atol=1e-10, rtol=1e-8, equal_nan=True)


def test_a_run_at_the_loss_floor_stops_as_floor_even_at_a_small_gradient():
    """Both rules hold before the first update: no update is made, and the reason is "floor"
    (a loss below the floor is a global minimum, whatever the gradient)."""
    X, y = small_data()
    e = L.train_many(X, y, 2, 3, grad_tol=1e9, loss_floor=1e9, max_steps=50,
                     classify_endpoints=False)
    assert e.reason == ["floor"] * 3 and e.steps.tolist() == [0, 0, 0]
    torch.testing.assert_close(e.W, e.W0, atol=0, rtol=0)


# ------------------------------------------------------------- slices and sweep rows, value by value

@pytest.mark.parametrize("loss", ["quadratic", "logistic"])
def test_slice_and_line_values_are_the_losses_at_their_points(loss):
    """slice_2d's loss[i, j] is L(θ + α_j δ + β_i η), δ, η the filter-normalized directions of
    seeds seed and seed + 1; interpolate_1d's default α runs from −0.25 to 1.25 in 121 steps,
    its loss at α that of (1 − α)θ_0 + αθ_1; both in the loss asked for."""
    X, y, W, z = random_point()
    sl = L.slice_2d(X, y, W[0], z[0], span=0.6, points=4, seed=5, loss=loss)
    (dW1, dz1), (dW2, dz2) = (L.filter_normalized_direction(W[0], z[0], seed=s) for s in (5, 6))
    grid = torch.linspace(-0.6, 0.6, 4, dtype=D)
    for i, j in [(0, 3), (3, 0), (1, 2)]:
        a, b = grid[j], grid[i]
        Wp, zp = W[0] + a * dW1 + b * dW2, z[0] + a * dz1 + b * dz2
        want, err = L.loss_and_grad(Wp[None], zp[None], X, y, loss=loss)[:2]
        torch.testing.assert_close(sl["loss"][i, j], want[0])
        torch.testing.assert_close(sl["error"][i, j], err[0])
    line = L.interpolate_1d(X, y, (W[0], z[0]), (W[1], z[1]), loss=loss)
    torch.testing.assert_close(line["alpha"], torch.linspace(-0.25, 1.25, 121, dtype=D))
    for k in (0, 37, 120):
        a = line["alpha"][k]
        mid = ((1 - a) * W[0] + a * W[1])[None], ((1 - a) * z[0] + a * z[1])[None]
        torch.testing.assert_close(line["loss"][k], L.loss_and_grad(*mid, X, y, loss=loss)[0][0])


def test_sweep_rows_count_their_runs():
    """A sweep row: P/N = d1(d0 + 1)/N, the class fractions and error statistics of its own
    runs' labels and errors, those runs being train_many on make_data(data, n, d0, seed) with
    the same seed."""
    n, d0, seed = 12, 3, 2
    rows = L.sweep("random", (1, 3), runs=5, n=n, d0=d0, seed=seed, max_steps=150, loss_floor=0.3)
    X, y = L.make_data("random", n, d0, seed)
    for row, d1 in zip(rows, (1, 3)):
        assert row["d1"] == d1 and row["P/N"] == d1 * (d0 + 1) / n and row["runs"] == 5
        for label in L.LABELS:
            assert row[f"frac_{label}"] == row["labels"].count(label) / 5
        errors = row["errors"]
        assert row["mean_error"] == pytest.approx(sum(errors) / 5)
        assert row["frac_nonzero_error"] == sum(e > 0 for e in errors) / 5
        again = L.train_many(X, y, d1, 5, seed=seed, max_steps=150, loss_floor=0.3,
                             classify_endpoints=False)
        assert again.error.tolist() == errors
        assert row["mean_steps"] == pytest.approx(again.steps.double().mean().item())


def test_example_slices_take_the_run_with_the_highest_error():
    n, d0 = 12, 3
    out = L.example_slices(n, d0, (1, 4), seed=1, max_steps=60)
    X, y = L.make_data("random", n, d0, 1)
    for d1 in (1, 4):
        e = L.train_many(X, y, d1, 8, seed=1, max_steps=60, classify_endpoints=False)
        ex = out[f"d1={d1}"]
        assert ex["error"] == e.error.max().item() and ex["P/N"] == d1 * (d0 + 1) / n
        r = int(torch.argmax(e.error))
        torch.testing.assert_close(ex["line"]["loss"][[20, 100]],  # α = 0 and α = 1
                                   L.loss_and_grad(torch.stack([e.W0[r], e.W[r]]),
                                                   torch.stack([e.z0[r], e.z[r]]), X, y)[0])


def test_markdown_table_separator_and_number_format():
    """A separator cell per column; integers without decimals, other numbers to 3 decimals
    with trailing zeros dropped, those below 1e-3 to 3 significant digits."""
    rows = [{"a": 5.0, "b": 2 / 3, "c": 0.25}, {"a": 1.234e-4, "b": 4e-4, "c": 0.00456}]
    lines = L.markdown_table(rows, columns=("a", "b", "c")).splitlines()
    assert lines[:2] == ["| a | b | c |", "|---|---|---|"]
    assert lines[2:] == ["| 5 | 0.667 | 0.25 |", "| 0.000123 | 0.0004 | 0.005 |"]
