"""Small helpers of bench, lessons and env, each pinned to what its docstring says (a manual
mutation audit found these behaviours untested)."""

import asyncio
import os
from queue import Empty
from types import SimpleNamespace

import pytest

from analysis import bench, env, lessons


def fake_clock(monkeypatch, module, durations):
    """`module.time.perf_counter` reads a clock that only the returned fn() moves, by the next of
    `durations`."""
    clock, calls = [0.0], []
    steps = iter(durations)

    def fn():
        calls.append(1)
        clock[0] += next(steps)

    monkeypatch.setattr(module, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    return fn, calls


def test_median_time_is_the_median_of_repeat_timed_calls_after_warmup(monkeypatch):
    fn, calls = fake_clock(monkeypatch, bench, [50.0, 50.0, 1.0, 2.0, 100.0])
    assert bench.median_time(fn, repeat=3, warmup=2) == 2.0  # the warm-up calls are not timed
    assert len(calls) == 5


@pytest.mark.parametrize("budget_s, repeat, expected", [
    (10.0, 20, 10),  # about budget_s seconds in all
    (100.0, 20, 20),  # never more than `repeat`
    (1.0, 20, 3),  # at least 3
])
def test_adaptive_repeat_fits_the_budget_between_3_and_repeat(monkeypatch, budget_s, repeat, expected):
    fn, calls = fake_clock(monkeypatch, bench, [1.0])
    assert bench._adaptive_repeat(fn, repeat, budget_s, cuda=False) == expected
    assert len(calls) == 1


@pytest.mark.parametrize("cuda", [False, True])
def test_adaptive_repeat_waits_for_the_gpu_only_on_cuda(monkeypatch, cuda):
    synced = []
    fn, _ = fake_clock(monkeypatch, bench, [1.0])
    monkeypatch.setattr(bench.torch.cuda, "synchronize", lambda: synced.append(1))
    bench._adaptive_repeat(fn, 20, 10.0, cuda=cuda)
    assert synced == ([1] if cuda else [])


def test_another_value_steps_a_slider_up_onto_its_top():
    import ipywidgets as W

    assert bench._another_value(W.IntSlider(value=7, min=1, max=8)) == 8
    assert bench._another_value(W.FloatSlider(value=1.75, min=0.0, max=2.0, step=0.25)) == 2.0
    # float rounding: 0.2 + 0.1 = 0.30000000000000004 is the top, not past it
    assert bench._another_value(W.FloatSlider(value=0.2, min=0.0, max=0.3, step=0.1)) == 0.3
    assert bench._another_value(W.IntSlider(value=8, min=1, max=8)) == 7


def test_another_value_refuses_a_slider_that_cannot_move():
    import ipywidgets as W

    with pytest.raises(ValueError, match="n has one value"):
        bench._another_value(W.IntSlider(value=3, min=3, max=3, description="n"))


def make_lessons(folder, *stems):
    import nbformat

    for stem in stems:
        nbformat.write(nbformat.v4.new_notebook(), folder / f"{stem}.ipynb")


def test_an_empty_lesson_name_matches_no_lesson(tmp_path):
    make_lessons(tmp_path, "00_start_here", "01_binarized_networks")
    with pytest.raises(ValueError, match="no lesson matches ''"):
        lessons.find_lessons([""], tmp_path)


def test_a_notebook_path_is_a_lesson_only_when_it_exists(tmp_path):
    make_lessons(tmp_path, "00_start_here")
    (tmp_path / "elsewhere").mkdir()
    make_lessons(tmp_path / "elsewhere", "scratch")
    scratch = tmp_path / "elsewhere" / "scratch.ipynb"
    assert lessons.find_lessons([str(scratch)], tmp_path) == [scratch]
    with pytest.raises(ValueError, match="no lesson matches"):
        lessons.find_lessons([str(tmp_path / "elsewhere" / "missing.ipynb")], tmp_path)


@pytest.mark.parametrize("before", [None, "yes", "0"])
@pytest.mark.parametrize("fast", [False, True])
def test_lessons_fast_sets_the_mode_then_restores_the_environment(monkeypatch, before, fast):
    if before is None:
        monkeypatch.delenv("LESSONS_FAST", raising=False)
    else:
        monkeypatch.setenv("LESSONS_FAST", before)
    with pytest.raises(RuntimeError):  # also when the block fails
        with lessons._lessons_fast(fast):
            assert os.environ["LESSONS_FAST"] == ("1" if fast else "0")
            assert lessons.fast_mode() is fast
            raise RuntimeError
    assert os.environ.get("LESSONS_FAST") == before


def test_sliced_polls_never_wait_past_the_deadline_nor_forever(monkeypatch):
    """Each poll waits min(slice, time left), never a negative time (zmq reads that as no limit).
    A fake clock: each reading moves it 0.25 s on, and a poll moves it by its timeout."""
    clock, asked = [0.0], []

    def monotonic():
        clock[0] += 0.25
        return clock[0] - 0.25

    async def empty(timeout=None):
        asked.append(timeout)
        clock[0] += timeout
        raise Empty

    monkeypatch.setattr(lessons, "time", SimpleNamespace(monotonic=monotonic))
    get = lessons._sliced_get_msg(empty, slice_s=1.0)
    with pytest.raises(Empty):
        asyncio.run(get(timeout=2.5))
    assert asked == [1.0, 0.75]  # the second poll ends at the deadline, 2.5 s after the start
    asked.clear()
    with pytest.raises(Empty):
        asyncio.run(get(timeout=0))  # one look, no wait
    assert asked == [0.0]


def test_a_module_failing_with_os_error_is_reported_not_raised(tmp_path, monkeypatch):
    """A shared library that does not load raises OSError on import, not ImportError."""
    (tmp_path / "broken_mutation_audit_lib.py").write_text("raise OSError('libfoo.so: cannot open')")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert env._import_error("broken_mutation_audit_lib") == "OSError: libfoo.so: cannot open"
    assert env._import_error("os") is None


def test_the_report_gives_the_cpu_count_and_torch_threads():
    import torch

    report = env.environment_report()
    assert report["cpus"] == f"{os.cpu_count()} (torch uses {torch.get_num_threads()} threads)"


def test_format_report_aligns_values_two_spaces_after_the_longest_key():
    assert env.format_report({"a": "1", "cpus": "8"}) == "a     1\ncpus  8"
