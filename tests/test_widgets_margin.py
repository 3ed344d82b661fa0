"""The implicit-bias dashboard and figures, without a browser."""

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analysis import data  # noqa: E402
from analysis import margin as M  # noqa: E402
from analysis.plots import margin as P  # noqa: E402
from analysis.widgets import margin as WM  # noqa: E402


def test_callback_returns_figure_and_numbers():
    fig, numbers = WM.implicit_bias_callback(n=30, steps=2_000)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert numbers["support_vectors"] >= 1 and numbers["svm_margin"] > 0
    assert 0 <= numbers["final_angle_deg"] < 30
    assert numbers["final_loss"] < 0.05


def test_moving_a_point_makes_it_a_support_vector_and_shrinks_the_margin():
    X, y = WM.widget_data(n=30, move=0.0)
    before = M.hard_margin_svm(X, y)
    assert 0 not in before.support
    Xm, ym = WM.widget_data(n=30, move=1.0)
    after = M.hard_margin_svm(Xm, ym)
    assert 0 in after.support and after.margin < before.margin
    np.testing.assert_array_equal(X[1:], Xm[1:])
    _, numbers = WM.implicit_bias_callback(n=30, move=1.0, steps=1_000)
    assert numbers["svm_margin"] == pytest.approx(after.margin)


@pytest.mark.parametrize("loss,optimizer", [("exponential", "gd"), ("logistic", "sgd"),
                                            ("logistic", "momentum")])
def test_callback_loss_and_optimizer(loss, optimizer):
    fig, numbers = WM.implicit_bias_callback(n=20, loss=loss, optimizer=optimizer, steps=1_000)
    assert optimizer in fig.axes[0].get_title() and loss in fig.axes[0].get_title()
    assert numbers["final_angle_deg"] < 45


def test_callback_keeps_each_settings_run():
    """Returning to a setting reuses its GD run (only the figure is redrawn); another
    setting runs GD anew."""
    WM._run.cache_clear()
    _, first = WM.implicit_bias_callback(n=20, steps=1_000)
    _, again = WM.implicit_bias_callback(n=20, steps=1_000)
    assert again == first and WM._run.cache_info().hits == 1
    _, other = WM.implicit_bias_callback(n=20, steps=1_000, seed=4)
    assert WM._run.cache_info().misses == 2 and other["svm_margin"] != first["svm_margin"]
    X, _, _ = WM._run(20, 0.5, 0.0, "logistic", "gd", 1_000, 3)
    with pytest.raises(ValueError, match="read-only"):
        X[0, 0] = 0.0  # the kept data cannot be changed under a later redraw


def test_dashboard_reacts_to_controls():
    box = WM.implicit_bias_widget(steps=1_000)
    assert set(box.controls) == {"n", "margin", "move", "loss", "optimizer", "steps", "seed"}
    first = box.last_result[1]
    box.controls["margin"].value = 1.5
    assert box.last_result[1]["svm_margin"] > first["svm_margin"]
    box.controls["loss"].value = "exponential"
    assert "exponential" in box.last_result[0].axes[0].get_title()


def test_dashboard_takes_any_number_of_steps():
    """implicit_bias_widget(steps=500) raised TraitError 'Invalid selection: value not
    found' (the steps Dropdown listed only 1k, 10k, 100k); the steps asked for join the list."""
    box = WM.implicit_bias_widget(steps=500)
    assert list(box.controls["steps"].options) == [500, 1_000, 10_000, 100_000]
    assert box.controls["steps"].value == 500 and box.last_result[0].axes
    loss_500 = box.last_result[1]["final_loss"]
    box.controls["steps"].value = 1_000
    assert box.last_result[1]["final_loss"] < loss_500


def test_reference_curve_only_where_the_run_goes_past_t_100():
    """The dotted 1/log t reference starts at t = 100; a shorter run (steps < 100, which the
    dashboard now accepts) drew it as one point at its last t, still labelled 'from t = 100'
    (and divided by log 1 = 0 at steps=1)."""
    def labels(fig):
        return [line.get_label() for line in fig.axes[1].lines]

    fig, _ = WM.implicit_bias_callback(n=20, steps=1_000)
    assert "∝ 1/log t from t = 100" in labels(fig)
    for steps in (1, 50, 100):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fig, numbers = WM.implicit_bias_callback(n=20, steps=steps)
        assert not any("1/log t" in label for label in labels(fig)), steps
        assert np.isfinite(numbers["final_angle_deg"])


def test_figures_build():
    X, y = data.load("separable", n=20, d=2, seed=3)
    r = M.gradient_descent(X, y, steps=2_000, record=5)
    assert len(P.data_and_trajectory(X, y, r).axes) == 2
    fit = M.fit_rate(r.t, r.angle, decades=2)  # radians, as the lesson fits it
    assert len(P.gap_curves([r], fits=[fit]).axes) == 3
    Xt, yt = data.load("separable", "test", n=50, d=2, seed=3)
    assert len(P.train_past_zero_error(r, M.evaluate(r, Xt, yt)).axes) == 2
    assert len(P.fourier_spectra({"a": np.ones(8), "b": np.eye(8)[0]}).axes) == 2
    fb = M.fourier_bias(depths=(1, 2), d=8, n=3, seeds=[0], steps=50)
    assert len(P.sparsity_vs_depth(fb).axes) == 1
    with pytest.raises(ValueError, match="2-D"):
        X5, y5 = data.load("separable", n=10, d=5)
        P.data_and_trajectory(X5, y5, M.gradient_descent(X5, y5, steps=10))


def test_move_outside_its_range_is_refused():
    """move = −0.5 returned the data unmoved (and drew no moved point) while the caller asked
    for a move; move = 2 slid point 0 past the old SVM hyperplane (margin γ − a ≤ 0), data the
    slider cannot make, and the callback drew it as 'moved onto the margin'."""
    for move in (-0.5, 1.5, 2.0, float("nan")):
        with pytest.raises(ValueError, match=r"move must be in \[0, 1\]"):
            WM.widget_data(n=20, move=move)
        with pytest.raises(ValueError, match=r"move must be in \[0, 1\]"):
            WM.implicit_bias_callback(n=20, move=move, steps=100)
    # the ends of the range: unmoved, and point 0 at half the old margin
    X, y = WM.widget_data(n=20, move=0.0)
    X1, _ = WM.widget_data(n=20, move=1.0)
    old = M.hard_margin_svm(X, y)
    assert y[0] * X1[0] @ old.direction == pytest.approx(0.5 * old.margin)


def test_callback_numbers_are_those_of_the_final_direction():
    """support_vectors counts the points at the SVM margin γ; final_margin_gap = γ − min_n
    y_n x_nᵀw/‖w‖ and final_angle_deg the angle to the SVM direction, both at GD's last w."""
    _, numbers = WM.implicit_bias_callback(n=20, move=1.0, steps=1_000)
    X, y, r = WM._run(20, 0.5, 1.0, "logistic", "gd", 1_000, 3)
    u = r.svm.direction / np.linalg.norm(r.svm.direction)
    margins = y * (X @ u)
    assert numbers["svm_margin"] == pytest.approx(margins.min())
    assert numbers["support_vectors"] == int((margins < margins.min() * (1 + 1e-6)).sum())
    w = r.w[-1]
    assert numbers["final_margin_gap"] == pytest.approx(margins.min() - (y * (X @ w)).min()
                                                        / np.linalg.norm(w))
    cos = w @ u / np.linalg.norm(w)
    assert numbers["final_angle_deg"] == pytest.approx(np.degrees(np.arccos(min(cos, 1.0))), abs=1e-6)
