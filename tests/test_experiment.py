"""``reproduce``: the claim-vs-measured file, written after every model, and --resume."""

import pytest
from conftest import TinyNet

from mnist_course import smoke
from mnist_course.experiment import reproduce, run_recipe
from mnist_course.history import History
from mnist_course.models import get_model
from mnist_course.recipes import RECIPES
from mnist_course.summary import count_parameters


@pytest.fixture
def smoke_on(monkeypatch):
    monkeypatch.setenv("MNIST_COURSE_SMOKE", "1")  # 1 epoch on 2,000 / 1,000 images
    monkeypatch.setattr(smoke, "_announced", True)


def test_reproduce_writes_the_table_and_resumes(smoke_on, tmp_path, capsys):
    out, runs = tmp_path / "results" / "final_model.md", tmp_path / "runs"
    text = reproduce(["final"], 2, out, device="cpu", runs_dir=runs)
    assert out.read_text() == text
    assert f"| final | {count_parameters(get_model('final')):,} |" in text and "## final: per seed" in text
    assert "--models final --seeds 2" in text and "device: cpu" in text
    assert sorted(p.name for p in runs.iterdir()) == ["final-seed1.json", "final-seed2.json"]
    first = History.load(runs / "final-seed1.json")
    assert first.meta["seed"] == 1 and first.meta["recipe"]["lr"] == RECIPES["final"].lr

    capsys.readouterr()
    again = reproduce(["final"], 2, out, device="cpu", runs_dir=runs, resume=True)
    assert capsys.readouterr().out.count("read back") == 2
    assert again.split("\n", 3)[3] == text.split("\n", 3)[3]  # same table; only the command line differs


def test_a_run_follows_its_recipe(smoke_on):
    history = run_recipe("ref003", RECIPES["ref003"], seed=3, device="cpu", progress=False, verbose=False)
    assert history.meta["parameters"] == 19_866 and history.meta["seed"] == 3
    assert history.lr[0] == RECIPES["ref003"].lr and history.meta["optimizer"] == "SGD"
    assert history.meta["scheduler"] == "StepLR"


def test_a_candidate_outside_the_registry_runs_the_same_recipe(smoke_on):
    history = run_recipe("candidate", RECIPES["final"], seed=2, device="cpu", progress=False, verbose=False,
                         build=TinyNet)
    assert history.meta["model"] == "TinyNet" and history.meta["scheduler"] == "OneCycleLR"
    assert history.meta["parameters"] == count_parameters(TinyNet())
