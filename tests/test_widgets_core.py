import ipywidgets as W
import matplotlib.pyplot as plt

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
