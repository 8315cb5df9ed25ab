"""The two tiers of tests. Plain ``pytest`` runs in quick mode (MNIST_COURSE_SMOKE=1 unless you set it):
the unit tests, and every notebook under nbval on a small subset for one epoch, in minutes.
``pytest --full`` runs the whole series in full mode instead (tests/test_full_series.py)."""

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--full", action="store_true",
                     help="execute every notebook in full mode, in order, each in a fresh kernel (about an hour "
                          "on 2 CPU cores); each asserts its own target. Executed copies: test-output/full/")
    parser.addoption("--save-notebooks", action="store_true",
                     help="with --full: also write each executed notebook over notebooks/ (the committed outputs)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--full"):
        os.environ["MNIST_COURSE_SMOKE"] = "0"
    else:
        os.environ.setdefault("MNIST_COURSE_SMOKE", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under --full the notebooks run once, in tests/test_full_series.py, not a second time under nbval."""
    if config.getoption("--full"):
        notebook_items = [item for item in items if item.path.suffix == ".ipynb"]
        config.hook.pytest_deselected(items=notebook_items)
        items[:] = [item for item in items if item.path.suffix != ".ipynb"]
