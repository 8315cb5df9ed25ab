"""`History`: what one training run produced, epoch by epoch, saved as JSON."""

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import CourseError
from .paths import write_atomically

EPOCH_SERIES = ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")  # one value per epoch
SERIES = (*EPOCH_SERIES, "lr_per_step")


@dataclass
class History:
    """Per-epoch metrics of one run; accuracies in %, epochs counted from 1.

    ``lr`` is the learning rate at the start of each epoch, ``lr_per_step`` one entry per optimizer step.
    ``meta`` holds facts about the run (model, parameters, device, seed, recipe, epochs asked for).
    """

    name: str = ""
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
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
        return len(self.test_acc)

    @property
    def best_epoch(self) -> int:
        """1-based epoch of the best test accuracy (the first one, on ties); 0 before any epoch."""
        return self.test_acc.index(max(self.test_acc)) + 1 if self.test_acc else 0

    @property
    def best_test_acc(self) -> float:
        """Highest test accuracy of the run."""
        return max(self.test_acc, default=0.0)

    @property
    def best_train_acc(self) -> float:
        """Highest training accuracy of the run."""
        return max(self.train_acc, default=0.0)

    def add(self, train_loss: float, train_acc: float, test_loss: float, test_acc: float, lr: float,
            seconds: float) -> None:
        """Record one finished epoch."""
        for key, value in zip(EPOCH_SERIES, (train_loss, train_acc, test_loss, test_acc, lr, seconds)):
            getattr(self, key).append(value)

    @property
    def finished(self) -> bool:
        """True when every epoch asked for ran (``meta["epochs"]``) and nothing interrupted it."""
        return not self.interrupted and self.epochs > 0 and self.epochs == self.meta.get("epochs", self.epochs)

    def first_epoch_reaching(self, accuracy: float) -> int | None:
        """1-based first epoch whose test accuracy is at least ``accuracy``, or None."""
        return next((i + 1 for i, a in enumerate(self.test_acc) if a >= accuracy), None)

    def save(self, path: str | Path) -> Path:
        """Write the history as JSON (folders are created); returns the path."""
        return write_atomically(path, json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "History":
        """Read a history written by :meth:`save`; :class:`CourseError` naming the file if it is not one."""
        try:
            data = json.loads(Path(path).read_bytes())
        except OSError as exc:
            raise CourseError(f"cannot read {path}: {exc.strerror or exc}") from None
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError too: a binary file
            data = exc
        if problem := f"not JSON ({data})" if isinstance(data, Exception) else _problem(data):
            raise CourseError(f"{path} is not a History JSON file: {problem}")
        return cls(**data)


def _problem(data: object) -> str:
    """What is wrong with ``data`` as a saved History, or '' if nothing."""
    if not isinstance(data, dict):
        return f"expected an object, found {type(data).__name__}"
    if unknown := set(data) - {f.name for f in fields(History)}:
        return f"unknown field(s) {', '.join(sorted(unknown))}"
    for key in SERIES:
        values = data.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in values):
            return f"{key} must be a list of numbers"
    if len({len(data.get(k, [])) for k in EPOCH_SERIES if k in SERIES[:4] or data.get(k)}) > 1:
        return "per-epoch series of different lengths"  # lr and seconds may be left empty
    kinds = {"name": str, "interrupted": bool, "meta": dict}
    wrong = ", ".join(key for key, kind in kinds.items() if key in data and not isinstance(data[key], kind))
    return f"{wrong} of the wrong type (name: string, interrupted: boolean, meta: object)" if wrong else ""
