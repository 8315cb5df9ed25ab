"""What instructors rely on without running anything: requirements, Binder, and notebook hygiene."""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["00_data_and_normalization", "01_baseline", "02_batchnorm", "03_dropout", "04_gap",
            "05_scheduler_and_augmentation", "06_design_experiments"]


def requirement_names(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    reqs = [line for line in lines if line and not line.startswith("-")]
    return {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0].lower(): r for r in reqs}


def test_requirements_install_everything_without_pinning_torch():
    reqs = requirement_names(ROOT / "requirements.txt")
    for name in ("torch", "torchvision", "jupyterlab", "matplotlib", "ipywidgets", "torchsummary", "nbval",
                 "tqdm", "pytest"):
        assert name in reqs, name
    for name in ("torch", "torchvision", "ipywidgets", "torchsummary"):
        assert "==" not in reqs[name], f"{name} is pinned; Colab's own version must keep working"
    assert "-e ." in (ROOT / "requirements.txt").read_text().splitlines()


def test_binder_installs_cpu_torch_and_the_package():
    text = (ROOT / "binder" / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in text and "-e ." in text.splitlines()
    assert "ipywidgets>=8" not in text


def test_the_series_is_complete():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_hygiene(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    assert "colab.research.google.com" in "".join(cells[0]["source"]), "first cell: Open in Colab badge"
    setup = "".join(cells[1]["source"])
    assert "google.colab" in setup and "%pip install" in setup
    code = [c for c in cells if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), "commit outputs of one fresh top-to-bottom run"
    assert "widgets" not in nb["metadata"], "widget state must not be stored in the notebook"
    for cell in code:
        assert all(o["output_type"] != "error" for o in cell["outputs"])
        assert "NBVAL" not in "".join(cell["source"]), "test markers are cell tags, not comments"
        if "nbval-check-output" in cell["metadata"].get("tags", []):
            assert cell["outputs"], "a checked cell needs its stored output"
    text = json.dumps(nb)
    assert "smoke mode: on" not in text, "committed outputs must come from a full run"
    assert "environment_line" in "".join(code[-1]["source"]), "last cell: device, torch version, wall time"


PACKAGE = sorted((ROOT / "mnist_course").glob("*.py"))


def test_the_package_is_small_enough_to_read_in_one_sitting():
    lines = {p.name: len(p.read_text().splitlines()) for p in PACKAGE}
    bench = sum(len(p.read_text().splitlines()) for p in (ROOT / "benchmarks").glob("*.py"))
    # Issue #11 aims at 1,500 lines for the package and 1,800 with benchmarks/; the input checks, safe writes
    # and the grader took it above that (results/package_size.md says where the lines are): no growth from here.
    assert sum(lines.values()) <= 2_650, lines
    assert sum(lines.values()) + bench <= 2_900
    assert max(lines.values()) <= 250, lines
    for path in PACKAGE + sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno + 1 <= 60, f"{path.name}: {node.name}"


def test_notebooks_read_quick_mode_once_in_a_parameters_cell():
    for path in NOTEBOOKS:
        code = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        assert sum("quick_mode()" in src for src in code) == 1, path.name
