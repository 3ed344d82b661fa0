import matplotlib.pyplot as plt
import pytest


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures made by a test are closed after it, so pyplot does not hold hundreds."""
    yield
    plt.close("all")
