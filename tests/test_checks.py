"""The design and run checks (pass and fail cases), and the grader ``python -m mnist_course check``.

Learner files live in tests/data/learners/; a file with a syntax error is written to ``tmp_path`` at test
time so that ruff, which lints the repository, never meets it.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mnist_course import cli
from mnist_course.checks import CheckReport, design_check, run_check
from mnist_course.history import History
from mnist_course.quick import QUICK_NOTE
from mnist_course.registry import get_model

ROOT = Path(__file__).resolve().parent.parent
LEARNERS = ROOT / "tests" / "data" / "learners"
DATA = os.environ.get("MNIST_DATA") or str(ROOT / "data")


class Wrap(nn.Module):
    """``layers`` then ``finish`` (default: log-softmax over the flattened output)."""

    def __init__(self, *layers: nn.Module, finish=lambda x: F.log_softmax(x.flatten(1), dim=1)):
        super().__init__()
        self.layers, self.finish = nn.Sequential(*layers), finish

    def forward(self, x):
        return self.finish(self.layers(x))


def rules(report: CheckReport) -> dict:
    return {rule.name: rule for rule in report.rules}


def failed(report: CheckReport) -> list[str]:
    return [rule.name for rule in report.rules if rule.passed is False]


# --- design_check -------------------------------------------------------------------------------------------

def test_the_course_model_passes_and_its_facts_are_measured():
    report = design_check(get_model("final"), max_params=8_000)
    r = rules(report)
    assert report.passed is True and failed(report) == []
    params = r["parameters"]
    assert (params.measured, params.required, params.passed) == (7_952, "< 8,000", True)
    assert r["output shape"].measured == (2, 10) and r["log-probabilities"].passed
    assert r["receptive field"].measured == "22 px" and r["receptive field"].passed
    assert r["BatchNorm"].measured == "yes (6)" and r["global average pooling"].measured == "yes (1)"
    assert r["Dropout"].measured == "no" and r["Linear layer"].measured == "no"
    assert r["BatchNorm"].passed is None and r["BatchNorm"].required is None  # a fact, not a rule
    text = str(report)
    assert text.splitlines()[0] == "design check of Net: passed"
    assert "| parameters" in text and "7,952" in text and "layers.6.bn" in text
    assert report._repr_markdown_() == text  # Jupyter renders the same Markdown table


def test_over_budget_and_small_receptive_field_fail():
    report = design_check(get_model("baseline"))
    r = rules(report)
    assert report.passed is False
    assert set(failed(report)) == {"parameters", "receptive field"}
    assert r["parameters"].measured == 195_482 and r["receptive field"].measured == "16 px"
    assert r["Linear layer"].measured == "yes (2)" and r["Linear layer"].passed is None
    assert "FAILED" in str(report).splitlines()[0] and "| NO" in str(report)


def test_raw_scores_are_not_log_probabilities():
    report = design_check(Wrap(nn.Conv2d(1, 10, 28), finish=lambda x: 5 + x.flatten(1)))
    r = rules(report)
    assert r["output shape"].passed and r["log-probabilities"].passed is False
    assert r["log-probabilities"].measured.startswith("no: rows of exp sum to")
    assert any("log_softmax" in note for note in report.notes)


def test_wrong_output_shape_and_a_raising_forward_are_reported_not_raised():
    wrong = rules(design_check(Wrap(nn.Conv2d(1, 5, 28))))
    assert wrong["output shape"].measured == (2, 5) and wrong["output shape"].passed is False
    assert wrong["log-probabilities"].passed is None  # not measured
    broken = design_check(Wrap(nn.Flatten(), nn.Linear(500, 10)))
    shape = rules(broken)["output shape"]
    assert broken.passed is False and shape.passed is False
    assert shape.measured.startswith("forward raised RuntimeError: mat1 and mat2")
    assert rules(broken)["receptive field"].passed is None
    pair = rules(design_check(Wrap(nn.Identity(), finish=lambda x: (x, x))))["output shape"]
    assert (pair.measured, pair.passed) == ("forward returned a tuple, not a tensor", False)


def test_require_turns_facts_into_rules():
    gap_linear = Wrap(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    assert design_check(gap_linear, min_rf=3).passed is True
    report = design_check(gap_linear, min_rf=3, require={"gap": True, "linear": False, "batchnorm": True})
    r = rules(report)
    assert r["global average pooling"].passed is True and r["global average pooling"].required == "yes"
    assert r["Linear layer"].passed is False and r["Linear layer"].required == "no"
    assert r["BatchNorm"].passed is False and report.passed is False
    with pytest.raises(ValueError, match="unknown feature.*gapp"):
        design_check(gap_linear, require={"gapp": True})


class FunctionalPool(nn.Module):
    """A 3×3 convolution, ``F.max_pool2d`` (invisible to the trace), a 1×1 convolution."""

    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(1, 10, 3), nn.Conv2d(10, 10, 1)

    def forward(self, x):
        return F.log_softmax(self.head(F.max_pool2d(self.conv(x), 26)).flatten(1), dim=1)


def test_functional_pooling_leaves_the_receptive_field_not_judged():
    report = design_check(FunctionalPool())
    rf = rules(report)["receptive field"]
    assert rf.measured == "not measured" and rf.passed is None
    assert report.passed is None and failed(report) == []
    assert "not judged" in str(report).splitlines()[0]
    assert any("functional ops" in note for note in report.notes)


def test_design_check_leaves_the_model_and_the_random_state_alone():
    model = get_model("dropout").eval()
    state = torch.get_rng_state()
    design_check(model)
    assert not model.training and torch.equal(state, torch.get_rng_state())


# --- run_check ----------------------------------------------------------------------------------------------

def run(*test_acc: float, seed: int = 1, **meta) -> History:
    return History(test_acc=list(test_acc), meta={"seed": seed, **meta})


def test_runs_that_hold_the_target_pass():
    report = run_check([run(98.0, 99.41, 99.5, 99.45), run(99.6, 99.4, 99.5, 99.55, seed=2)])
    assert report.passed is True
    r = rules(report)
    assert r["seed 1: last 3 epochs, %"].measured == "99.41, 99.50, 99.45"
    assert r["seed 2: epochs"].measured == 4 and r["seed 2: epochs"].required == "≤ 19"


@pytest.mark.parametrize("history, failing", [
    (run(99.5, 99.39, 99.6), "seed 1: last 3 epochs, %"),  # one dip below 99.4 in the last three
    (run(99.5, 99.6), "seed 1: last 3 epochs, %"),  # fewer epochs than the last three
    (run(*[99.5] * 20), "seed 1: epochs"),  # 20 epochs: the course asks for fewer than 20
])
def test_runs_that_miss_a_goal_fail(history, failing):
    report = run_check([run(99.5, 99.5, 99.5, seed=2), history])
    assert report.passed is False and failed(report) == [failing]


def test_an_interrupted_run_and_no_run_fail():
    interrupted = History(test_acc=[99.5] * 3, interrupted=True, meta={"seed": 1})
    report = run_check([interrupted])
    assert report.passed is False and "(interrupted)" in rules(report)["seed 1: last 3 epochs, %"].measured
    assert run_check([]).passed is False


def test_custom_target_last_and_epochs():
    history = run(98.0, 98.6, 98.7)
    assert run_check([history], target=99.4).passed is False
    assert run_check([history], target=98.5, last=2, max_epochs=3).passed is True
    assert run_check([history], target=98.5, last=2, max_epochs=2).passed is False


def test_quick_mode_runs_are_not_judged():
    report = run_check([run(12.0, quick=True)])
    assert report.passed is None and failed(report) == []
    assert all(rule.passed is None for rule in report.rules)
    assert report.notes == [QUICK_NOTE] and "not judged" in str(report)


# --- the grader: python -m mnist_course check ---------------------------------------------------------------

@pytest.fixture
def check(monkeypatch, tmp_path, capsys):
    """``python -m mnist_course check ARGS`` in-process, in ``tmp_path``: (exit status, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_DATA", DATA)
    monkeypatch.delenv("MNIST_COURSE_SMOKE", raising=False)

    def call(*args: str) -> tuple[int, str, str]:
        try:
            code = cli.main(["check", *args])
        except SystemExit as exc:  # argparse
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err
    return call


def grade(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The same as a learner types it, in a new process."""
    env = {key: value for key, value in os.environ.items() if key != "MNIST_COURSE_SMOKE"}
    env.update(MNIST_DATA=DATA, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "mnist_course", "check", *args], capture_output=True,
                          text=True, check=False, cwd=cwd, env=env, timeout=300)


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    assert all(fragment in lines[0] for fragment in fragments), lines[0]
    assert out == ""  # nothing printed before the error


@pytest.mark.parametrize("target, fragments", [
    ("missing.py", ["missing.py: no such .py file"]),
    ("syntax_error.py", ["importing", "syntax_error.py raised SyntaxError", "line 3"]),
    ("good.py:Nope", ["good.py has no nn.Module class 'Nope'", "it defines: Net"]),
    ("two_models.py", ["two_models.py has 2 models, not one", "Block, Net", "PATH:CLASS"]),
    ("needs_args.py", ["needs_args.py: Net() raised TypeError", "missing 1 required positional argument"]),
    ("wrong_shape.py", ["wrong_shape.py: output (2, 5) for a (2, 1, 28, 28) batch, not (2, 10)"]),
    ("raises.py", ["raises.py: forward raised RuntimeError", "mat1 and mat2 shapes cannot be multiplied"]),
])
def test_bad_input_is_one_line_and_exit_2(check, tmp_path, target, fragments):
    (tmp_path / "syntax_error.py").write_text("from torch import nn\n\nclass Net(nn.Module)\n    pass\n")
    path = tmp_path / target if target.startswith("syntax") else LEARNERS / target
    assert_one_line_error(*check(str(path), "--design-only"), *fragments)


@pytest.mark.parametrize("option, fragment", [
    (["--epochs", "20"], "--epochs: must be at least 1 and at most 19"),
    (["--target", "101"], "--target: must be above 0 and at most 100"),
])
def test_bad_options_are_one_line_and_exit_2(check, option, fragment):
    assert_one_line_error(*check(str(LEARNERS / "good.py"), *option), fragment)


def test_bad_input_in_a_real_process(tmp_path):
    result = grade(str(LEARNERS / "raises.py"), cwd=tmp_path)
    assert_one_line_error(result.returncode, result.stdout, result.stderr, "raises.py: forward raised")


def test_design_only_pass_and_fail(check):
    code, out, err = check(str(LEARNERS / "two_models.py:Net"), "--design-only")
    assert code == 0, err
    assert out.startswith("design check of Net: passed") and "run check" not in out
    code, out, err = check(str(LEARNERS / "good.py"), "--design-only", "--max-params", "5000")
    assert code == 1 and err == ""
    assert "design check of Net: FAILED" in out and "< 5,000" in out


def test_a_failing_design_is_not_trained(check, monkeypatch):
    monkeypatch.setattr(cli, "run_recipe", lambda *a, **k: pytest.fail("trained a failing design"))
    code, out, _ = check(str(LEARNERS / "good.py"), "--max-params", "5000")
    assert code == 1 and "FAILED" in out and "run check" not in out


def stand_in(*test_acc: float, interrupted: bool = False):
    """A ``run_recipe`` that trains nothing: a History per seed with these accuracies; records its calls."""
    def run_recipe(name, recipe, seed, *, build, quick, **options):
        stand_in.calls.append((name, recipe.epochs, seed, build, quick))
        meta = {"seed": seed, "quick": quick}
        return History(name, test_acc=list(test_acc), interrupted=interrupted, meta=meta)
    stand_in.calls = []
    return run_recipe


@pytest.mark.parametrize("test_acc, status", [((99.0, 99.45, 99.5, 99.41), 0),  # all of the last three hold
                                              ((99.0, 99.45, 99.3, 99.41), 1)])  # one dips below 99.4
def test_the_run_verdict_sets_the_exit_status(check, monkeypatch, test_acc, status):
    monkeypatch.setattr(cli, "run_recipe", stand_in(*test_acc))
    code, out, err = check(str(LEARNERS / "good.py"), "--epochs", "4", "--seeds", "2")
    assert code == status, err
    assert [call[:3] for call in stand_in.calls] == [("Net", 4, 1), ("Net", 4, 2)]
    assert stand_in.calls[0][3].__name__ == "Net" and stand_in.calls[0][4] is False
    assert f"run check over 2 seed(s): {'passed' if status == 0 else 'FAILED'}" in out


def test_ctrl_c_during_a_run_gives_no_verdict(check, monkeypatch):
    monkeypatch.setattr(cli, "run_recipe", stand_in(99.5, interrupted=True))
    code, out, err = check(str(LEARNERS / "good.py"), "--seeds", "3")
    assert code == 130 and "no verdict" in err and "run check" not in out
    assert len(stand_in.calls) == 1  # seeds 2 and 3 never start


def test_missing_data_is_bad_input_before_training(check):
    code, _, err = check(str(LEARNERS / "good.py"), "--data", "no-such-folder")
    assert code == 2 and err.startswith("error: the data folder") and len(err.splitlines()) == 1


def test_quick_training_run_prints_the_run_table(tmp_path):
    result = grade(str(LEARNERS / "good.py"), "--quick", "--progress", "off", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "design check of Net: passed" in result.stdout
    assert "run check over 1 seed(s): not judged" in result.stdout
    assert "seed 1: last 3 epochs, %" in result.stdout and QUICK_NOTE in result.stdout


def test_help_says_it_runs_the_learners_code():
    parser = cli.build_parser()
    assert "RUNS ITS CODE" in parser.format_help()
    check = parser._subparsers._group_actions[0].choices["check"]
    text = check.format_help()
    assert "RUNS ITS CODE" in text and "PATH[:CLASS]" in text and "--design-only" in text
    assert "default: 20,000" in text and "default: 99.4" in text


def test_check_answer_judges_a_prediction_and_never_raises():
    from mnist_course.checks import check_answer

    assert check_answer("rf after one more 3×3?", None, 24).passed is None
    assert "put your prediction" in str(check_answer("q", None, 24))
    assert check_answer("q", 24, 24).passed is True
    assert check_answer("q", 23, 24).passed is False
    assert check_answer("q", 99.3, 99.35, tolerance=0.1).passed is True
    assert check_answer("q", "Rise", "rise").passed is True and check_answer("q", "fall", "rise").passed is False
