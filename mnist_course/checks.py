"""Checks of a design, of its runs and of a prediction: a :class:`CheckReport` of :class:`Rule` rows that
prints as a Markdown table. An unmet goal is reported, never raised."""

import copy
import runpy
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules import batchnorm, dropout

from .errors import CourseError
from .history import History
from .quick import QUICK_NOTE
from .receptive_field import RFTable, like_model, receptive_field_table
from .report import TARGET
from .summary import count_parameters

FEATURES = {"batchnorm": ("BatchNorm", batchnorm._BatchNorm), "dropout": ("Dropout", dropout._DropoutNd),
            "gap": ("global average pooling", nn.AdaptiveAvgPool2d), "linear": ("Linear layer", nn.Linear)}


@dataclass
class Rule:
    """One goal; ``passed`` is None when not judged (a fact, something not measurable, or quick mode)."""

    name: str
    measured: object
    required: str | None = None
    passed: bool | None = None

    def cells(self) -> list[str]:
        verdict = {True: "yes", False: "NO"}.get(self.passed, "-" if self.required is None else "not judged")
        measured = f"{self.measured:,}" if isinstance(self.measured, int) else str(self.measured)
        return [self.name, measured, self.required or "-", verdict]


@dataclass(repr=False)
class CheckReport:
    """The rules of one check, and notes; prints as an aligned Markdown table, which Jupyter renders."""

    title: str
    rules: list[Rule]
    notes: list[str]

    @property
    def passed(self) -> bool | None:
        """False if a rule fails; else None if a rule with a requirement was not judged; else True."""
        judged = [rule.passed for rule in self.rules if rule.required is not None]
        return False if False in judged else None if None in judged else True

    def __str__(self) -> str:
        rows = [["rule", "measured", "required", "passed"], *map(Rule.cells, self.rules)]
        widths = [max(map(len, column)) for column in zip(*rows)]
        rows.insert(1, ["-" * width for width in widths])
        table = ["| " + " | ".join(map(str.ljust, row, widths)) + " |" for row in rows]
        verdict = {True: "passed", False: "FAILED"}.get(self.passed, "not judged")
        notes = ["", *(f"- {note}" for note in self.notes)] if self.notes else []
        return "\n".join([f"{self.title}: {verdict}", "", *table, *notes])

    __repr__ = _repr_markdown_ = __str__


def design_check(model: nn.Module, max_params: int = 20_000, min_rf: int = 20,
                 require: Mapping[str, bool] | None = None) -> CheckReport:
    """Parameters (< ``max_params``); (2, 10) log-probabilities out for a (2, 1, 28, 28) batch; receptive
    field ≥ ``min_rf`` px at the last feature map before the head. ``require`` (e.g. ``{"gap": True}``)
    turns :data:`FEATURES` facts into rules; an unknown key is a ValueError. ``model`` is left untouched."""
    if unknown := set(require or {}) - set(FEATURES):
        raise ValueError(f"unknown feature(s) {sorted(unknown)}; choose from {', '.join(FEATURES)}")
    n, (out, rf, where, table) = count_parameters(model), _trace(model)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else out if isinstance(out, str) else (
        f"forward returned a {type(out).__name__}, not a tensor")
    sums = out.float().exp().sum(1).tolist() if shape == (2, 10) else []
    logp = all(abs(s - 1) < 1e-3 for s in sums) if sums else None
    rules = [Rule("parameters", n, f"< {max_params:,}", n < max_params),
             Rule("output shape", shape, "(2, 10)", shape == (2, 10)),
             Rule("log-probabilities", "not measured" if logp is None else "yes" if logp else
                  f"no: rows of exp sum to {', '.join(f'{s:.3g}' for s in sums)}", "yes", logp),
             Rule("receptive field", "not measured" if rf is None else f"{rf} px", f"≥ {min_rf} px",
                  None if rf is None else rf >= min_rf)]
    for key, (label, kind) in FEATURES.items():
        found = sum(isinstance(m, kind) for m in model.modules())
        if key == "gap" and table:  # also an AvgPool2d as large as the map
            found = sum(row.note == "global pool" and "Avg" in row.type for row in table)
        want = (require or {}).get(key)  # None: a fact, not a rule
        rules.append(Rule(label, f"yes ({found})" if found else "no", {True: "yes", False: "no"}.get(want),
                          None if want is None else bool(found) == want))
    notes = [f"receptive field {'not measured: ' * (rf is None)}{where}"]
    notes += ["training uses F.nll_loss: end forward with F.log_softmax(x, dim=1)"] * (logp is False)
    return CheckReport(f"design check of {type(model).__name__}", rules, notes)


def _trace(model: nn.Module) -> tuple[object, int | None, str, RFTable | None]:
    """A copy's output for a (2, 1, 28, 28) batch (or what forward raised); the receptive field in px at the
    last feature map larger than 1×1 (or None), where it was measured (or why not); the RF table."""
    try:
        probe, x = copy.deepcopy(model), like_model(model, torch.linspace(-2, 2, 1568).view(2, 1, 28, 28))
        with torch.no_grad(), torch.random.fork_rng(devices=[x.device.index or 0] if x.is_cuda else []):
            probe.train()(x)  # dropout draws, then the caller's random state is restored
            out = probe.eval()(x)
    except Exception as exc:  # noqa: BLE001 - a learner's forward may raise anything: report it
        return " ".join(f"forward raised {type(exc).__name__}: {exc}".split()), None, "forward raised", None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = receptive_field_table(probe)
    except Exception as exc:  # noqa: BLE001 - a layer the tracer does not know
        return out, None, " ".join(str(exc).split()), None
    if caught:  # functional pooling: the table is wrong from there on
        return out, None, str(caught[0].message), table
    head = next((i for i, row in enumerate(table) if not row.spatial or row.out_size == (1, 1)), len(table))
    rf = table[head - 1].rf if head else 1  # a model that flattens its input has no feature map
    where = f"at {table[head - 1].name}, the last feature map before the head" if head else "at the input"
    return out, min(rf) if isinstance(rf, tuple) else rf, where, table


def run_check(histories: Sequence[History], target: float = TARGET, last: int = 3,
              max_epochs: int = 19) -> CheckReport:
    """Each run (a History per seed) reaches ``target`` % held-out accuracy (validation when the run has a
    validation split) in each of its last ``last`` epochs, in at most ``max_epochs`` epochs. Quick-mode runs
    are shown, not judged."""
    quick = any(h.meta.get("quick") for h in histories)
    rules = [] if histories else [Rule("runs", 0, "≥ 1", False)]
    for i, h in enumerate(histories):
        seed, tail = h.meta.get("seed", i + 1), h.acc()[-last:]
        held = len(tail) == last and min(tail) >= target and not h.interrupted
        accuracies = (", ".join(f"{a:.2f}" for a in tail) or "no epoch") + " (interrupted)" * h.interrupted
        label = f"seed {seed}: last {last} epochs" + (", validation" if h.held_out == "val" else "")
        rules += [Rule(f"{label}, %", accuracies, f"each ≥ {target:g}", held),
                  Rule(f"seed {seed}: epochs", h.epochs, f"≤ {max_epochs}", h.epochs <= max_epochs)]
    for rule in rules if quick else []:  # quick mode: shown, not judged
        rule.passed = None
    return CheckReport(f"run check over {len(histories)} seed(s)", rules, [QUICK_NOTE] * quick)


def load_learner(spec: str) -> tuple[type[nn.Module], nn.Module]:
    """The ``nn.Module`` class in ``PATH.py[:CLASS]`` (default: the file's one class), and one built from it.
    Importing runs the file's code; every failure is one :class:`CourseError`."""
    text, _, name = spec.rpartition(":")
    path, name = (Path(text), name) if text and name.isidentifier() else (Path(spec), "")
    if path.suffix != ".py" or not path.is_file():
        raise CourseError(f"{path}: no such .py file")
    try:
        namespace = runpy.run_path(str(path), run_name="learner")
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a syntax error, or whatever its code raises
        raise CourseError(f"importing {path} raised {type(exc).__name__}: {exc}") from None
    classes = {k: v for k, v in namespace.items() if nn.Module in getattr(v, "__mro__", ())}
    defined = [k for k, v in classes.items() if v.__module__ == "learner"]
    name = name or (defined[0] if len(defined) == 1 else "")
    if name not in classes:
        problem = f"no nn.Module class {name!r}" if name else f"{len(defined) or 'no'} models, not one"
        raise CourseError(f"{path} has {problem}; it defines: {', '.join(defined) or 'none'}; use PATH:CLASS")
    try:
        return classes[name], classes[name]()
    except Exception as exc:  # noqa: BLE001 - whatever its __init__ raises, e.g. for a missing argument
        raise CourseError(f"{path}: {name}() raised {type(exc).__name__}: {exc}") from None


def check_answer(question: str, guess: object, measured: object, tolerance: float = 0.0) -> CheckReport:
    """A learner's ``guess`` against the ``measured`` value (numbers may be off by ``tolerance``);
    ``guess=None`` (the starting point) is shown as not judged."""
    if guess is None:
        ok = None
    elif isinstance(measured, (int, float)) and isinstance(guess, (int, float)):
        ok = abs(guess - measured) <= tolerance
    else:
        ok = str(guess).strip().lower() == str(measured).strip().lower()
    required = f"{measured}" + (f" ± {tolerance:g}" if tolerance else "")
    note = ["put your prediction in `guess` and run the cell again"] if guess is None else []
    rule = Rule("your prediction", "none yet" if guess is None else guess, required, ok)
    return CheckReport(question, [rule], note)
