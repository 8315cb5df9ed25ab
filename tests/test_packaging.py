"""What instructors rely on without running anything: requirements, Binder, and notebook hygiene."""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["00_data_and_normalization", "01_baseline", "02_batchnorm", "03_dropout", "04_gap",
            "05_scheduler_and_augmentation", "06_design_experiments", "07_challenge", "08_how_small"]


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


def test_the_save_hook_is_enabled_by_the_installed_config():
    """``pip install`` puts ``jupyter-config/`` into ``etc/jupyter`` (pyproject's data-files); each file
    enables ``mnist_course_jupyter`` for its server (jupyter_server, the classic Notebook)."""
    import tomllib

    files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert sorted(files) == ["etc/jupyter/jupyter_notebook_config.d", "etc/jupyter/jupyter_server_config.d"]
    for folder, (path,) in files.items():
        assert Path(path).parent.name == Path(folder).name
        config = json.loads((ROOT / path).read_text())
        key = "jpserver_extensions" if "server" in folder else "nbserver_extensions"
        assert config == {("ServerApp" if "server" in folder else "NotebookApp"): {key: {"mnist_course_jupyter": True}}}
    copy = """cp -r jupyter-config/. "$(python -c 'import sys; print(sys.prefix)')/etc/jupyter/\""""
    for path in ("binder/postBuild", "README.md", ".ci/run"):  # the editable install copies no config files
        assert copy in (ROOT / path).read_text(), path


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


PACKAGE = sorted((ROOT / "mnist_course").glob("*.py")) + [ROOT / "mnist_course_jupyter.py"]


def test_the_package_is_small_enough_to_read_in_one_sitting():
    lines = {p.name: len(p.read_text().splitlines()) for p in PACKAGE}
    bench = sum(len(p.read_text().splitlines()) for p in (ROOT / "benchmarks").glob("*.py"))
    # Issue #11 aims at 1,500 lines for the package and 1,800 with benchmarks/; with the features of #12-#16 it is
    # above that (results/package_size.md says where the lines are and what 1,500 would cost; the save hook,
    # mnist_course_jupyter.py, counts with the package): no growth from here.
    assert sum(lines.values()) <= 2_637, lines
    assert sum(lines.values()) + bench <= 2_908
    assert max(lines.values()) <= 250, lines
    for path in PACKAGE + sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno + 1 <= 60, f"{path.name}: {node.name}"


def test_notebooks_read_quick_mode_once_in_a_parameters_cell():
    for path in NOTEBOOKS:
        code = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        assert sum("quick_mode()" in src for src in code) == 1, path.name


def test_every_run_a_notebook_loads_has_a_reference_run_shipped_with_the_package():
    """On Colab each notebook gets a fresh machine: ``load_run`` then shows the course's own run, which must
    be there, finished, full-mode, and named as the notebooks ask for it."""
    from mnist_course.history import REFERENCE_RUNS, History

    asked = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        asked |= set(re.findall(r'load_run\("(\w+)"', code))
        for names in re.findall(r"names = \[([^\]]*)\]", code):
            asked |= set(re.findall(r'"(\w+)"', names))
    assert {"02_batchnorm", "03_dropout", "04_gap"} <= asked
    for name in sorted(asked):
        history = History.load(REFERENCE_RUNS / f"{name}.json")
        assert history.finished and not history.meta.get("quick"), name
        assert history.held_out == "val" and not history.test_acc, f"{name}: a step never opens the test set"
    assert "package-data" in (ROOT / "pyproject.toml").read_text()


def test_the_frontier_chart_data_is_copied_from_the_committed_results():
    """07's chart reads mnist_course/reference_runs/frontier.json (so it works on Colab): every number there
    must be in the results file it names, which a real run wrote."""
    frontier = json.loads((ROOT / "mnist_course" / "reference_runs" / "frontier.json").read_text())
    assert {p["name"] for p in frontier} >= {"final", "ref001", "ref002", "ref003", "ref004"}
    for point in frontier:
        text = (ROOT / point["source"].split()[0]).read_text()
        assert f"{point['parameters']:,}" in text, point["name"]
        assert len(point["min_last3"]) == len(point["seeds"]) >= 4, point["name"]
        missing = [v for v in point["min_last3"] if f"{v:.2f}" not in text]
        assert not missing, f"{point['name']}: {missing} not in {point['source']}"


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_every_notebook_checks_its_target_and_ends_with_checked_exercises(path):
    cells = json.loads(path.read_text())["cells"]
    text = ["".join(c["source"]) for c in cells]
    starts = [i for i, (c, t) in enumerate(zip(cells, text)) if c["cell_type"] == "markdown" and t.startswith("## Exercises")]
    assert len(starts) == 1, "one '## Exercises' section"
    exercises = text[starts[0]:]
    assert sum(t.count("<details>") for t in exercises) >= 2, "explanations in collapsed <details> blocks"
    assert sum(t.count("check_answer(") + t.count("design_check(") for t in exercises) >= 1, "answers checked by code"
    targets = [t for c, t in zip(cells[:starts[0]], text) if c["cell_type"] == "code" and "target" in t.split("\n")[0].lower()]
    assert any("assert" in t and "QUICK" in t for t in targets), "a cell that asserts this notebook's target in full mode"


def test_the_small_search_data_is_copied_from_its_record():
    """08's search table reads mnist_course/reference_runs/small_search.json: each row must be a run row of
    results/small_design.md, which benchmarks/design_search.py --record wrote."""
    rows = json.loads((ROOT / "mnist_course" / "reference_runs" / "small_search.json").read_text())
    record = (ROOT / "results" / "small_design.md").read_text()
    assert len(rows) >= 10 and all(r["seed"] not in range(1, 6) for r in rows), "searched on seeds other than 1-5"
    for r in rows:
        line = (f"| {r['candidate']} | {r['params']:,} | {r['seed']} | {', '.join(f'{a:.2f}' for a in r['last3'])} "
                f"| {r['min_last3']:.2f} | {r['best']:.2f} | {r['train']:.2f} | {r['seconds']} |")
        assert line in record, line
