import inspect

import ipywidgets as W
import matplotlib.pyplot as plt
import nbformat
import pytest
from nbclient import NotebookClient

from analysis.widgets import dashboard


def line_callback(slope: float = 1.0, label: str = "a"):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, slope], label=label)
    plt.show()
    return fig, {"slope": slope, "label": label}


def test_dashboard_runs_callback_at_start_and_on_every_change():
    box = dashboard(line_callback, {"slope": W.FloatSlider(value=1.0, min=-2, max=2),
                                    "label": W.Dropdown(options=["a", "b"], value="a")},
                    title="demo")
    fig0, numbers0 = box.last_result
    assert numbers0 == {"slope": 1.0, "label": "a"}
    box.controls["slope"].value = -1.5
    fig1, numbers1 = box.last_result
    assert numbers1["slope"] == -1.5 and fig1 is not fig0
    assert fig1.axes[0].lines[0].get_ydata()[1] == -1.5
    box.controls["label"].value = "b"
    assert box.last_result[1] == {"slope": -1.5, "label": "b"}
    assert repr(box) == "Dashboard(line_callback: slope, label)"


def test_dashboard_controls_redraw_on_release_and_figures_are_not_kept():
    before = len(plt.get_fignums())
    box = dashboard(line_callback, {"slope": W.FloatSlider(value=0.5)})
    for v in (0.1, 0.2, 0.3):
        box.controls["slope"].value = v
    assert box.controls["slope"].continuous_update is False
    assert len(plt.get_fignums()) == before


def test_dashboard_status_says_computing_while_the_callback_runs_then_its_time():
    seen = []

    def slow_callback(x: int = 1):
        seen.append(box_status[0].value if box_status else None)
        if x == 3:
            raise RuntimeError("bad value")
        return line_callback(float(x))

    box_status = []
    box = dashboard(slow_callback, {"x": W.IntSlider(value=1, min=0, max=5)})
    box_status.append(box.status)
    assert box.status in box.children and box.children.index(box.status) == len(box.children) - 2
    assert box.status.value.startswith("<small>drawn in ") and box.status.value.endswith(" s</small>")
    box.controls["x"].value = 2
    assert seen[-1] == "<i>computing…</i>"
    assert "drawn in" in box.status.value
    try:  # outside a notebook the error propagates; the status still says what happened
        box.controls["x"].value = 3
    except RuntimeError:
        pass
    assert box.status.value == "<i>the callback failed: its error is below</i>"
    plt.close("all")


def failing_callback(x: int = 1):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, x])
    if x == 3:
        raise RuntimeError("bad value 3")  # after the figure is made, as a plot function can
    plt.show()
    return fig, {"x": x}


def test_a_failed_callback_leaves_no_figure_and_no_stale_result():
    """A callback that fails after making its figure left it open in pyplot, and last_result
    kept the previous setting's figure and numbers as if they were this one's."""
    box = dashboard(failing_callback, {"x": W.IntSlider(value=1, min=0, max=5)})
    before = plt.get_fignums()
    with pytest.raises(RuntimeError, match="bad value 3"):
        box.controls["x"].value = 3
    assert plt.get_fignums() == before
    assert box.last_result is None
    box.controls["x"].value = 2
    assert box.last_result[1] == {"x": 2} and plt.get_fignums() == before


def test_in_a_notebook_a_failed_callback_shows_its_error_in_the_dashboard_only():
    """In a kernel the Output widget shows the error (the statement that moved the slider goes
    on); the half-drawn figure was drawn by the inline backend at the end of the cell, as a plot
    of its own outside the dashboard (also when the dashboard's first drawing fails)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "%matplotlib inline\nimport ipywidgets as W\nimport matplotlib.pyplot as plt\n"
        "from analysis.widgets import dashboard\n\n"
        + inspect.getsource(failing_callback) +
        "\nbox = dashboard(failing_callback, {'x': W.IntSlider(value=1, min=0, max=5)})\n"
        "box.controls['x'].value = 3\n"
        "print(box.status.value, box.last_result)")]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["stream"]  # no stray image/png beside it
    assert outputs[0]["text"] == "<i>the callback failed: its error is below</i> None\n"


def test_repr_names_the_function_behind_a_partial():
    """Lesson 01's histogram and width dashboards bind their data with functools.partial: the
    saved notebook's text read 'Dashboard(callback: layer)', naming no callback."""
    import functools

    box = dashboard(functools.partial(functools.partial(line_callback, label="b")),
                    {"slope": W.FloatSlider(value=0.5)})
    assert repr(box) == "Dashboard(line_callback: slope)"
    assert box.last_result[1] == {"slope": 0.5, "label": "b"}
    plt.close("all")


def test_another_value_is_a_value_each_control_accepts():
    """bench dashboards moves every control once: one slider step (down at the top), the next
    option, the other check-box state, the first sign of a ±1 text flipped."""
    from analysis.bench import _another_value

    assert _another_value(W.IntSlider(value=4, min=1, max=8)) == 5
    assert _another_value(W.IntSlider(value=8, min=1, max=8)) == 7
    assert _another_value(W.FloatSlider(value=2.0, min=0.0, max=2.0, step=0.25)) == 1.75
    assert _another_value(W.Dropdown(options=["none", "sqrt"], value="sqrt")) == "none"
    assert _another_value(W.Dropdown(options=[("fifty", 50), ("1000", 1000)], value=50)) == 1000
    assert _another_value(W.SelectionSlider(options=[16, 64, 256], value=64)) == 256
    assert _another_value(W.Checkbox(value=False)) is True
    assert _another_value(W.Text(value="+-+")) == "--+"


def test_bench_dashboards_moves_every_control_and_writes_json(tmp_path, capsys):
    """Each control of the chosen dashboards is moved once and its figure drawn; the table
    and the JSON hold one row per control, the value moved to and positive times."""
    import json

    from analysis.bench import dashboards
    from analysis.widgets.start import quantizer_dashboard
    from analysis.widgets.xnor import xnor_dashboard

    out = tmp_path / "dash.json"
    capsys.readouterr()
    assert dashboards(["--only", "00", "02", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    expected = [("00 quantizer", c) for c in quantizer_dashboard().controls] + \
               [("02 xnor", c) for c in xnor_dashboard().controls]
    assert [(r["dashboard"], r["control"]) for r in rows] == expected == [
        ("00 quantizer", "bits"), ("00 quantizer", "clip"), ("02 xnor", "a"), ("02 xnor", "b")]
    assert [r["value"] for r in rows] == [3, 1.25, "--++-+--+-", "-+-+--+-++"]
    assert all(r["seconds"] > 0 and r["draw_seconds"] > 0 for r in rows)
    assert "\x1b" not in printed and "4 moves: median" in printed
    assert [line.split()[2] for line in printed.splitlines() if line.startswith(("00 ", "02 "))] == \
        ["bits", "clip", "a", "b"]


def test_bench_dashboards_names_the_dashboards_when_none_matches(capsys):
    from analysis.bench import dashboards

    with pytest.raises(SystemExit):
        dashboards(["--only", "07"])
    assert "--only 07 matches no dashboard; the dashboards: 00 quantizer, 01 sign" in capsys.readouterr().err
