"""The full tier (``pytest --full``): every notebook, in order, top to bottom in a fresh kernel, full mode.

Each notebook asserts its own target in a cell of its own, so a notebook that runs but misses its target
fails here. Later notebooks read earlier ones' runs (``runs/``), hence the order. nbval cannot keep what it
executes, so this tier runs the notebooks with nbclient and keeps each executed copy under
``test-output/full/``; with ``--save-notebooks`` it also writes it over ``notebooks/``: the committed outputs
are the outputs of the run that passed.
"""

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mnist_course.history import History

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
OUT = ROOT / "test-output" / "full"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_full_mode(path: Path, request: pytest.FixtureRequest) -> None:
    if not request.config.getoption("--full"):
        pytest.skip("the full tier: pytest --full")
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=None, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        nb.metadata.pop("widgets", None)  # widget state: the PNG beside each widget is what a saved file shows
        OUT.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, OUT / path.name)
        (OUT / f"{path.stem}.seconds").write_text(f"{time.perf_counter() - start:.0f}\n")
    if request.config.getoption("--save-notebooks"):
        nbformat.write(nb, path)
        save_reference_runs(path.name[:2])


def save_reference_runs(prefix: str) -> None:
    """Copy the notebook's finished full-mode runs (``notebooks/runs/NN_*.json``) into the package, without the
    per-step learning rates: the runs a later notebook shows when the learner's own are absent (Colab)."""
    reference = ROOT / "mnist_course" / "reference_runs"
    for run in sorted((ROOT / "notebooks" / "runs").glob(f"{prefix}_*.json")):
        history = History.load(run)
        assert history.finished and not history.meta.get("quick"), f"{run} is not a finished full run"
        history.lr_per_step = []
        history.save(reference / run.name)
