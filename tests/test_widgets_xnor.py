"""Lesson 02's dashboard and figures, without a browser: call the callback, move the controls."""

import io
import json

import matplotlib
import matplotlib.colors

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analysis import xnor  # noqa: E402
from analysis.plots import PALETTE  # noqa: E402
from analysis.plots.xnor import benchmark_figure, inference_figure  # noqa: E402
from analysis.widgets.xnor import xnor_callback, xnor_dashboard  # noqa: E402


def test_callback_numbers() -> None:
    fig, numbers = xnor_callback(a="++--+", b="+-+-+")
    assert isinstance(fig, Figure)
    assert numbers["bits_a"] == "11001" and numbers["bits_b"] == "10101"
    assert numbers["xor"] == "01100" and numbers["popcount"] == 2
    assert numbers["dot"] == 5 - 2 * 2 == numbers["dot_float"] == 1
    assert "popcount" in fig.axes[0].get_title()


@pytest.mark.parametrize("seed", range(5))
def test_callback_dot_equals_float_dot(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = ("".join(rng.choice(["+", "-"], size=13)) for _ in range(2))
    _, numbers = xnor_callback(a=a, b=b)
    assert numbers["dot"] == numbers["dot_float"]


def _png(fig: Figure) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")  # as the notebook's inline backend does
    buf.seek(0)
    return plt.imread(buf)


def test_cell_labels_stay_out_of_the_layout() -> None:
    """The 6·K cell labels sit inside the image: kept out of the layout passes (faster to
    draw at K = 32), and the picture is the same as with them in."""
    fig, _ = xnor_callback(a="+-" * 16, b="++--" * 8)
    texts = fig.axes[0].texts
    assert len(texts) == 6 * 32 and not any(t.get_in_layout() for t in texts)
    drawn = _png(fig)
    for t in texts:
        t.set_in_layout(True)
    assert np.array_equal(drawn, _png(fig))


def test_dashboard_reruns_on_change() -> None:
    box = xnor_dashboard()
    assert box.last_result[1]["k"] == 8
    box.controls["a"].value = "++++++++"
    assert box.last_result[1]["dot"] == 0  # b = ++-+--+- has four of each
    box.controls["b"].value = "- - - - - - - -"
    assert box.last_result[1]["dot"] == -8 and box.last_result[1]["popcount"] == 8


@pytest.mark.parametrize("a,b,match", [("+-x", "+--", "'\\+' and '-' only"),
                                       ("+-", "+--", "same length"), ("", "", "at least one")])
def test_callback_rejects_bad_vectors(a: str, b: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        xnor_callback(a=a, b=b)


def test_benchmark_figures_from_json(tmp_path) -> None:
    """The lesson plots committed GPU JSON; here a made-up one of the same shape."""
    rows = [{"shape": "square", "m": s, "n": s, "k": s, "exact": True,
             "seconds": {"xnor": s**3 * 1e-13, "xnor-popc": s**3 * 4e-13, "baseline": s**3 * 3e-12,
                         "fp32": s**3 * 5e-13},
             "xnor_speedup": {"xnor-popc": 4.0, "baseline": 30.0, "fp32": 5.0}} for s in (1024, 2048)]
    (tmp_path / "h100.json").write_text(json.dumps({"benchmark": "xnor", "device": "cuda",
                                                    "xnor_kernel": "tc", "gpu": {"name": "test"},
                                                    "rows": rows}))
    (tmp_path / "cpu.json").write_text(json.dumps({"benchmark": "xnor", "device": "cpu"}))
    found = xnor.committed_benchmarks(tmp_path)
    assert [r["file"] for r in found] == ["h100.json"]
    fig = benchmark_figure(found[0], xnor.PAPER)
    assert "GTX 750" in " ".join(t.get_text() for t in fig.axes[1].texts)
    assert [line.get_label() for line in fig.axes[1].get_lines()][:3] == [
        "xnor vs xnor-popc", "xnor vs baseline", "xnor vs fp32"]
    assert "'tc' kernel" in fig._suptitle.get_text()
    names = ["xnor", "torch float", "baseline", "xnor-popc"]  # as bench bnn-inference writes them
    inference = {"depth": 3, "width": 4096, "batch": 10000, "xnor_kernel": "tc", "gpu": {"name": "test"},
                 "seconds": dict(zip(names, [1.0, 3.0, 7.0, 2.0])),
                 "xnor_speedup": dict(zip(names, [1.0, 3.0, 7.0, 2.0]))}
    ax = inference_figure(inference, xnor.PAPER).axes[0]
    assert "paper" in ax.get_title() and "'tc' kernel" in ax.get_xlabel()
    paper_grey = matplotlib.colors.to_rgba(PALETTE["paper"])
    assert all(bar.get_facecolor() != paper_grey for bar in ax.patches)  # grey is the paper's
    assert xnor.committed_benchmarks(tmp_path / "missing") == []


def test_committed_benchmarks_skip_a_malformed_file_with_a_warning(tmp_path) -> None:
    """A file cut short, a JSON list or a folder named *.json is skipped with a warning naming
    it; a JSONDecodeError naming no file stopped lesson 02 (AttributeError for the list)."""
    good = {"benchmark": "bnn-inference", "device": "cuda", "gpu": {"name": "test"}}
    (tmp_path / "a-good.json").write_text(json.dumps(good))
    (tmp_path / "b-cut.json").write_text(json.dumps(good)[:20])
    (tmp_path / "c-list.json").write_text("[1, 2]")
    (tmp_path / "d-folder.json").mkdir()
    with pytest.warns(UserWarning) as caught:
        found = xnor.committed_benchmarks(tmp_path)
    assert [r["file"] for r in found] == ["a-good.json"]
    said = " ".join(str(w.message) for w in caught)
    assert all(name in said for name in ("b-cut.json", "c-list.json", "d-folder.json"))


def test_benchmark_figure_of_a_cpu_result_reads_as_a_slowdown() -> None:
    """Lesson 02 cell 20 plots a CPU result, where xnor is slower than fp32: the speedup axis had
    no 1x line, ticks read '9×10⁻¹', and the title said 'XNOR speedup' for a slowdown."""
    rows = [{"shape": "square", "m": s, "n": s, "k": s, "exact": True,
             "seconds": {"fp32": s**3 * 1e-12, "xnor": s**3 * 1e-12 / ratio},
             "xnor_speedup": {"fp32": ratio}} for s, ratio in ((256, 0.62), (512, 0.75), (1024, 0.9))]
    result = {"benchmark": "xnor", "device": "cpu", "machine": {"threads": 1, "date": "2025-01-01"},
              "rows": rows}
    fig = benchmark_figure(result)
    ax = fig.axes[1]
    one = [ln for ln in ax.get_lines() if ln.get_label() == "1x: as fast"]
    assert len(one) == 1 and set(one[0].get_ydata()) == {1.0}
    assert "1x: as fast" in [t.get_text() for t in ax.get_legend().get_texts()]
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)
              if t.get_text() and ax.get_ylim()[0] <= t.get_position()[1] <= ax.get_ylim()[1]]
    assert len(labels) >= 3 and "1x" in labels
    assert all(label.endswith("x") and "10" not in label for label in labels), labels
    assert "speedup" not in ax.get_title() and ax.get_title() == "XNOR speed relative to fp32"


def test_inference_figure_says_what_the_number_on_a_bar_is() -> None:
    names = ["xnor", "torch float", "baseline"]
    inference = {"depth": 3, "width": 64, "batch": 100, "seconds": dict(zip(names, [1.0, 3.0, 7.0])),
                 "xnor_speedup": dict(zip(names, [1.0, 3.0, 7.0]))}
    ax = inference_figure(inference).axes[0]
    assert "7.0x" in [t.get_text() for t in ax.texts]
    assert "its time / xnor time" in ax.get_title()


def test_callback_takes_32_signs_and_refuses_33() -> None:
    """MAX_LENGTH = 32 signs fit the figure: 32 are drawn, 33 are refused."""
    _, numbers = xnor_callback(a="+-" * 16, b="+" * 32)
    assert numbers["k"] == 32 and numbers["dot"] == 0
    with pytest.raises(ValueError, match="at most 32 signs"):
        xnor_callback(a="+" * 33, b="+" * 33)
