import matplotlib.pyplot as plt
import pytest


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures made by a test are closed after it, so pyplot does not hold hundreds."""
    yield
    plt.close("all")


@pytest.fixture
def exit_code_after_ctrl_c():
    """cli(argv) -> its exit code, for a cli that meets a Ctrl-C inside: a test failure (not an
    aborted test session) if the KeyboardInterrupt escapes it."""
    def run(cli, argv):
        try:
            return cli(argv)
        except KeyboardInterrupt:
            pytest.fail(f"Ctrl-C escaped {cli.__module__}.{cli.__name__} as a KeyboardInterrupt")
    return run
