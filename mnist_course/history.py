"""`History`: what one training run produced, epoch by epoch, saved as JSON."""

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import CourseError
from .paths import write_atomically

EPOCH_SERIES = ("train_loss", "train_acc", "train_eval_loss", "train_eval_acc", "val_loss", "val_acc",
                "test_loss", "test_acc", "lr", "seconds")
SPLIT_NAMES = {"train_eval": "train (eval mode)", "val": "validation", "test": "test"}


@dataclass
class History:
    """Per-epoch metrics of one run, accuracies in %: ``train_*`` averaged over the epoch's batches (train
    mode), ``train_eval_*`` after it in eval mode on a fixed training subset, ``val_*``/``test_*`` empty if
    not measured; ``lr`` at each epoch's start (``lr_per_step``: every step); ``meta``: model, seed, recipe..."""

    name: str = ""
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    train_eval_loss: list[float] = field(default_factory=list)
    train_eval_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    lr_per_step: list[float] = field(default_factory=list)
    interrupted: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return max(len(getattr(self, key)) for key in EPOCH_SERIES)

    @property
    def held_out(self) -> str:
        """``"val"`` when the run has a validation split, else ``"test"``: the images a run is judged on."""
        return "val" if self.val_acc else "test"

    @property
    def train_split(self) -> str:
        """``"train_eval"`` (eval mode, fixed subset) when measured, else ``"train"`` (running average)."""
        return "train_eval" if self.train_eval_acc else "train"

    def acc(self, split: str | None = None) -> list[float]:
        """Accuracy per epoch on ``split`` ("train", "train_eval", "val", "test"; default :attr:`held_out`)."""
        return getattr(self, f"{split or self.held_out}_acc")

    def loss(self, split: str | None = None) -> list[float]:
        """Loss per epoch on ``split`` (default :attr:`held_out`)."""
        return getattr(self, f"{split or self.held_out}_loss")

    @property
    def best_epoch(self) -> int:
        """1-based epoch of the best held-out accuracy (validation if any; the first on ties); 0 before any."""
        return self.first_epoch_reaching(self.best_acc) or 0

    @property
    def best_acc(self) -> float:
        """Highest held-out accuracy of the run (validation if any, else test)."""
        return max(self.acc(), default=0.0)

    @property
    def best_test_acc(self) -> float:
        """Highest test accuracy of the run (a report, never a choice)."""
        return max(self.test_acc, default=0.0)

    @property
    def best_train_acc(self) -> float:
        """Highest training accuracy of the run (eval mode when measured)."""
        return max(self.acc(self.train_split), default=0.0)

    def add(self, **values: float) -> None:
        """Record one finished epoch: a value for each series it measured (names from ``EPOCH_SERIES``)."""
        if unknown := set(values) - set(EPOCH_SERIES):
            raise ValueError(f"unknown series {', '.join(sorted(unknown))}")
        for key, value in values.items():
            getattr(self, key).append(value)

    @property
    def finished(self) -> bool:
        """True when every epoch asked for ran (``meta["epochs"]``) and nothing interrupted it."""
        return not self.interrupted and self.epochs > 0 and self.epochs == self.meta.get("epochs", self.epochs)

    def first_epoch_reaching(self, accuracy: float) -> int | None:
        """1-based first epoch whose held-out accuracy is at least ``accuracy``; None if none."""
        return next((i + 1 for i, a in enumerate(self.acc()) if a >= accuracy), None)

    def save(self, path: str | Path) -> Path:
        """Write the history as JSON (folders are created); returns the path."""
        return write_atomically(path, json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "History":
        """Read a history written by :meth:`save`; :class:`CourseError` naming the file if it is not one."""
        try:
            data = json.loads(Path(path).read_bytes())
            problem = _problem(data)
        except OSError as exc:
            raise CourseError(f"cannot read {path}: {exc.strerror or exc}") from None
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError too: a binary file
            problem = f"not JSON ({exc})"
        if problem:
            raise CourseError(f"{path} is not a History JSON file: {problem}")
        return cls(**data)


REFERENCE_RUNS = Path(__file__).parent / "reference_runs"  # the course's own full runs, shipped with the package


def load_run(name: str, folder: str | Path = "runs") -> tuple[History, str]:
    """Your finished run ``folder/name.json``; if there is none (a fresh Colab machine, a skipped notebook),
    the reference run of the same name committed with the course. Returns (history, where it came from)."""
    path = Path(folder) / f"{name}.json"
    if path.exists() and (history := History.load(path)).finished:
        return history, f"your run, {path}"
    if (reference := REFERENCE_RUNS / f"{name}.json").exists():
        history = History.load(reference)
        return history, (f"the course's reference run (no finished {path} here), from the full run on "
                         f"{history.meta.get('environment', 'an unknown machine')}")
    raise CourseError(f"no run {name!r}: {path} does not exist or did not finish, and the course has no "
                      "reference run of that name; run the notebook that trains it first")


def _problem(data: object) -> str:
    """What is wrong with ``data`` as a saved History, or '' if nothing."""
    if not isinstance(data, dict):
        return f"expected an object, found {type(data).__name__}"
    if unknown := set(data) - {f.name for f in fields(History)}:
        return f"unknown field(s) {', '.join(sorted(unknown))}"
    for key in (*EPOCH_SERIES, "lr_per_step"):
        values = data.get(key, [])
        if not isinstance(values, list) or not all(type(v) in (int, float) for v in values):
            return f"{key} must be a list of numbers"
    if len({len(data.get(k, [])) for k in EPOCH_SERIES if k in ("train_loss", "train_acc") or data.get(k)}) > 1:
        return "per-epoch series of different lengths"  # a split a run did not measure stays empty
    kinds = {"name": str, "interrupted": bool, "meta": dict}
    wrong = ", ".join(key for key, kind in kinds.items() if key in data and not isinstance(data[key], kind))
    return f"{wrong} of the wrong type (name: string, interrupted: boolean, meta: object)" if wrong else ""
