import nbformat
import pytest

from analysis.lessons import fast_mode, find_lessons, run_notebook


def make_notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def test_run_notebook_writes_outputs_in_fast_mode(tmp_path):
    path = make_notebook(tmp_path / "01_demo.ipynb", "import os\nprint(os.environ['LESSONS_FAST'])",
                         "x = list(range(10**6))\nlen(x)")
    row = run_notebook(path, fast=True, timeout=120)
    assert row["error"] is None
    assert row["peak_mb"] > 20  # the kernel process was measured
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].outputs[0]["text"].strip() == "1"
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "1000000"
    assert [c.execution_count for c in nb.cells] == [1, 2]


def test_run_notebook_reports_a_failing_cell(tmp_path):
    path = make_notebook(tmp_path / "02_bad.ipynb", "raise ValueError('broken lesson')")
    row = run_notebook(path, timeout=60, write=False)
    assert row["error"] is not None and "broken lesson" in row["error"]


def test_failed_run_keeps_the_committed_outputs(tmp_path):
    path = make_notebook(tmp_path / "03_slow.ipynb", "print('committed')", "import time\ntime.sleep(30)")
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="committed\n")]
    nbformat.write(nb, path)
    before = path.read_text()
    row = run_notebook(path, timeout=3)
    assert row["error"] == "a cell ran longer than the timeout (3 s)"
    assert row["seconds"] < 25
    assert path.read_text() == before  # not overwritten by the half-run notebook


def test_dead_kernel_is_reported(tmp_path):
    path = make_notebook(tmp_path / "04_dies.ipynb", "import os\nos._exit(1)")
    row = run_notebook(path, timeout=60, write=False)
    assert row["error"] is not None and row["error"].startswith("the kernel died")


def test_find_lessons_by_number_and_unknown_name(tmp_path):
    for name in ("00_start_here", "01_binarized_networks"):
        make_notebook(tmp_path / f"{name}.ipynb", "1")
    assert [p.stem for p in find_lessons(["01"], tmp_path)] == ["01_binarized_networks"]
    assert len(find_lessons(None, tmp_path)) == 2
    with pytest.raises(ValueError, match="no lesson matches '07'"):
        find_lessons(["07"], tmp_path)


def test_fast_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv("LESSONS_FAST", "1")
    assert fast_mode()
    monkeypatch.setenv("LESSONS_FAST", "0")
    assert not fast_mode()
