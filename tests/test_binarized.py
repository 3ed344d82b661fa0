"""analysis.binarized: STE values, latent weights, binarized inputs, run-time memory, width sweep."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

from analysis import binarized as b
from analysis import data, models


@pytest.fixture(scope="module")
def trained():
    model, history = b.train_model("bnn-mlp", width=32, depth=2, epochs=1, n_train=300)
    return model, history


@pytest.mark.parametrize("x, sign, hardtanh, grad", [
    (0.5, 1.0, 0.5, 1.0), (-0.3, -1.0, -0.3, 1.0), (0.0, 1.0, 0.0, 1.0),
    (1.0, 1.0, 1.0, 1.0), (-1.0, -1.0, -1.0, 1.0), (1.01, 1.0, 1.0, 0.0), (-2.0, -1.0, -1.0, 0.0),
])
def test_sign_ste_at(x, sign, hardtanh, grad):
    v = b.sign_ste_at(x)
    assert v["sign"] == sign and v["ste_gradient"] == grad
    assert v["hardtanh"] == pytest.approx(hardtanh)


def test_sign_ste_curves_gradient_is_indicator():
    x = torch.linspace(-3, 3, 601)
    c = b.sign_ste_curves(x)
    assert torch.equal(c["ste_gradient"], (x.abs() <= 1).float())
    assert set(c["sign"].unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(c["hardtanh"], x.clamp(-1, 1))


def test_latent_weights_are_clipped(trained):
    model, history = trained
    w = b.latent_weights(model)
    assert list(w) == ["1", "3", "5"]  # Flatten, Linear, BN, Linear, ...: the QuantLinear layers
    assert w["1"].numel() == 784 * 32 and w["5"].numel() == 32 * 10
    assert all(float(t.abs().max()) <= 1.0 for t in w.values())
    assert len(history) == 1 and 0.0 <= history.final["test_error"] <= 1.0


def test_binarized_layer_inputs_are_bn_outputs(trained):
    model, _ = trained
    X = torch.randn(40, 1, 28, 28)
    inputs = b.binarized_layer_inputs(model, X, batch_size=16)
    assert list(inputs) == ["3", "5"]  # the first layer sees real pixels
    assert model.training  # the mode is restored
    model.eval()
    with torch.no_grad():
        expected = model[:3](X).flatten()
    model.train()
    assert torch.allclose(inputs["3"], expected, atol=1e-6)
    assert inputs["5"].numel() == 40 * 32


def test_binarization_stats():
    w = torch.tensor([-1.0, 1.0, 0.5, -0.2])
    a = torch.tensor([-3.0, 0.5, 0.9, 2.0, -0.1])
    s = b.binarization_stats(w, a)
    assert s == pytest.approx({"clipped_weights": 0.5, "positive_weights": 0.5, "ste_pass": 0.6,
                               "positive_inputs": 0.6})
    assert set(b.binarization_stats(w)) == {"clipped_weights", "positive_weights"}
    with pytest.raises(ValueError, match="non-empty"):
        b.binarization_stats(torch.tensor([]))


def test_binarization_stats_count_edges_as_sign_ste_does():
    """|a| = 1 passes the STE (1{|a| ≤ 1}) and 0 counts as positive (sign(0) = +1): the
    fractions are those of sign_ste's gradient and forward on the same values."""
    w = torch.tensor([-1.0, 1.0, 0.0, -0.2])
    a = torch.tensor([-1.0, 1.0, 0.0, 1.5, -0.1])
    s = b.binarization_stats(w, a)
    assert s == pytest.approx({"clipped_weights": 0.5, "positive_weights": 0.5, "ste_pass": 0.8,
                               "positive_inputs": 0.6})
    curves = b.sign_ste_curves(a)
    assert s["ste_pass"] == pytest.approx(curves["ste_gradient"].mean().item())
    assert s["positive_inputs"] == pytest.approx((curves["sign"] == 1).float().mean().item())
    assert s["positive_weights"] == pytest.approx((b.sign_ste_curves(w)["sign"] == 1).float().mean().item())


def test_memory_ratio_binarized_only_counts_1_bit_kernels_alone():
    """binarized_only: 32 float bits / 1 bit = 32x, a 2-bit layer beside it left out (16x)."""
    from analysis.layers import BinarizedLinear, QuantLinear

    model = torch.nn.Sequential(BinarizedLinear(64, 64), QuantLinear(64, 64, kernel_quantizer=2))
    assert b.memory_ratio(model, binarized_only=True) == 32.0
    assert b.memory_ratio(model) == pytest.approx(2 * 32 / (1 + 2))  # equal sizes: 2·32 bits / 3 bits


def test_run_time_memory_paper_mlp():
    with torch.device("meta"):
        bnn = models.build("bnn-mlp", width=4096, depth=3)
        flt = models.build("mlp", width=4096, depth=3)
    rows = b.run_time_memory(bnn)
    linear = [r for r in rows if r["kind"] == "QuantLinear"]
    assert [r["values"] for r in linear] == [784 * 4096, 4096 * 4096, 4096 * 4096, 4096 * 10]
    assert all(r["bits_per_weight"] == 1 and r["ratio"] == 32.0 for r in linear)
    total = rows[-1]
    assert total["layer"] == "total"
    assert total["float_bytes"] == 147_423_392 and total["run_time_bytes"] == 4_797_600
    assert b.memory_ratio(bnn) == pytest.approx(30.7286, abs=1e-4)
    assert b.memory_ratio(bnn, binarized_only=True) == 32.0
    assert b.run_time_memory(flt)[-1]["ratio"] == 1.0
    with pytest.raises(ValueError, match="no binarized layers"):
        b.memory_ratio(flt, binarized_only=True)


def test_width_sweep_rows_and_cache():
    rows = b.width_sweep([8, 16], depth=1, epochs=1, n_train=200)
    assert [(r["name"], r["width"]) for r in rows] == [("bnn-mlp", 8), ("bnn-mlp", 16),
                                                       ("mlp", 8), ("mlp", 16)]
    for r in rows:
        assert 0.0 <= r["test_error"] <= 1.0
        assert r["parameters"] > 0
    bnn16 = rows[1]
    assert bnn16["float_bytes"] / bnn16["run_time_bytes"] > 10  # binary kernels dominate
    assert rows[3]["run_time_bytes"] == rows[3]["float_bytes"]
    again = b.width_sweep([8, 16], depth=1, epochs=1, n_train=200)
    assert again == rows and again is not rows
    assert again[0]["seconds"] == rows[0]["seconds"]  # from the cache, not re-trained


def test_errors_are_actionable():
    with pytest.raises(ValueError, match="each width must be a positive integer, got 0"):
        b.width_sweep([0])
    with pytest.raises(ValueError, match="at least one hidden width"):
        b.width_sweep([])
    with pytest.raises(ValueError, match="train_model knows"):
        b.train_model("cnn", width=8, depth=1, epochs=1)
    with pytest.raises(ValueError, match="n_train"):
        b.train_model("mlp", width=8, depth=1, epochs=1, n_train=0)
    with pytest.raises(ValueError, match="each width must be a positive integer, got 16.5"):
        b.width_sweep([16.5])  # was trained silently at width 16
    for model in (torch.nn.Sequential(), torch.nn.ReLU()):  # were a ZeroDivisionError
        with pytest.raises(ValueError, match="nothing to count"):
            b.run_time_memory(model)
        with pytest.raises(ValueError, match="nothing to count"):
            b.memory_ratio(model)


def test_lesson_settings_modes():
    fast, normal = b.lesson_settings(True), b.lesson_settings(False)
    assert fast["width"] < normal["width"] and fast["epochs"] <= normal["epochs"]
    fast["width"] = -1
    assert b.lesson_settings(True)["width"] != -1  # a copy


def test_format_memory_table():
    with torch.device("meta"):
        rows = b.run_time_memory(models.build("bnn-mlp", width=4096, depth=3))
    lines = b.format_memory(rows).splitlines()
    assert len(lines) == 1 + 8 + 1  # header, 4 linear + 4 batch-norm layers, total
    assert lines[1].split() == ["1", "QuantLinear", "3,211,264", "1", "12,845,056", "401,408", "32.0x"]
    assert lines[-1].split() == ["total", "36,855,848", "147,423,392", "4,797,600", "30.7x"]


@pytest.mark.parametrize("n_train", [2.5, True])
def test_train_model_n_train_must_be_a_count(n_train):
    """n_train=2.5 was a TypeError from slicing the data; True trained on one example."""
    with pytest.raises(ValueError, match=f"n_train must be a positive integer, got {n_train!r}"):
        b.train_model("mlp", width=8, depth=1, epochs=1, n_train=n_train)


def test_width_sweep_takes_numpy_widths():
    """widths=np.array([8, 16]) (say 2 ** np.arange(3, 5)) was numpy's 'truth value of an array
    is ambiguous' ValueError from `if not widths`; now the same runs as the list [8, 16]."""
    kw = dict(depth=1, epochs=1, n_train=200)
    rows = b.width_sweep(np.array([8, 16]), **kw)
    assert [(r["name"], r["width"]) for r in rows] == [("bnn-mlp", 8), ("bnn-mlp", 16),
                                                       ("mlp", 8), ("mlp", 16)]
    assert all(type(r["width"]) is int for r in rows)
    assert rows == b.width_sweep([8, 16], **kw)
    one = b.width_sweep(range(8, 9), **kw)  # its own runs: compare all but the time taken
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in one] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in (rows[0], rows[2])]


@pytest.mark.parametrize("names", [("bnn-mlp", "cnn"), "mlp", ()])
def test_width_sweep_checks_names_before_training(names, monkeypatch):
    """An unknown name was found only when its turn came, after the other models' runs had
    trained (minutes in the lesson's normal mode); names="mlp" ran the models 'm', 'l', 'p'."""
    runs = []
    monkeypatch.setattr(b, "train_model", lambda name, **kw: runs.append(name))
    with pytest.raises(ValueError, match="names must be a sequence of the models bnn-mlp, mlp"):
        b.width_sweep([8], depth=1, epochs=1, n_train=200, names=names, seed=123)
    assert runs == []


def test_train_model_refuses_more_examples_than_the_dataset_has():
    """n_train=100_000 on mnist5k trained on its 4,000 training examples without a word (the
    slice stops at the end); the history did not say so either."""
    n = len(data.load("mnist5k", "train")[0])
    with pytest.raises(ValueError, match=f"n_train={n + 1} is more than the {n} training examples"):
        b.train_model("mlp", width=8, depth=1, epochs=1, n_train=n + 1)
    model, history = b.train_model("mlp", width=8, depth=1, epochs=1, n_train=n)  # all: fine
    assert history.final["updates"] == n // 100  # batches of 100


def test_format_memory_columns_stay_aligned_for_long_names():
    """Ghost BN's kind (16 letters) and nested layer names overflowed the fixed columns (6 and
    12 characters) and pushed their rows out of line with the header."""
    with torch.device("meta"):
        model = torch.nn.Sequential(OrderedDict(binary=models.build("bnn-mlp", width=64, depth=1,
                                                                    ghost_size=16)))
        rows = b.run_time_memory(model)
    assert any(len(r["kind"]) > 12 for r in rows) and any(len(r["layer"]) > 6 for r in rows)
    lines = b.format_memory(rows).splitlines()
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header
    end = lines[0].index("values") + len("values")
    assert all(line[end - 1].isdigit() for line in lines[1:])  # the counts end under "values"
