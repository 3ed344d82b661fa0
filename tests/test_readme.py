import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bash_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_readme_has_the_two_commands_and_ci_runs_the_second_verbatim():
    blocks = bash_blocks((ROOT / "README.md").read_text())
    install_and_open, install_and_test = blocks[0].strip(), blocks[1].strip()
    assert "jupyter lab" in install_and_open and "pip install" in install_and_open
    assert "pytest" in install_and_test and ".[dev]" in install_and_test
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert install_and_test in ci_lines


def test_readme_links_every_lesson_with_a_binder_badge():
    text = (ROOT / "README.md").read_text()
    for nb in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")):
        assert f"urlpath=lab/tree/lessons/{nb.name}" in text, nb.name
