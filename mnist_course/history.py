"""`History`: what one training run produced, epoch by epoch, saved as JSON."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


@dataclass
class History:
    """Per-epoch metrics of one run. Accuracies are percentages; epochs are counted from 1.

    ``lr`` is the learning rate at the start of each epoch; ``lr_per_step`` has one entry per
    optimizer step, so a OneCycle schedule can be drawn exactly. ``meta`` holds free-form facts
    about the run (model name, parameters, device, seed, torch version).
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
        if not self.test_acc:
            return 0
        return self.test_acc.index(max(self.test_acc)) + 1

    @property
    def best_test_acc(self) -> float:
        """Highest test accuracy of the run."""
        return max(self.test_acc, default=0.0)

    @property
    def best_train_acc(self) -> float:
        """Highest training accuracy of the run."""
        return max(self.train_acc, default=0.0)

    def first_epoch_reaching(self, accuracy: float) -> int | None:
        """1-based first epoch whose test accuracy is at least ``accuracy``, or None."""
        return next((i + 1 for i, a in enumerate(self.test_acc) if a >= accuracy), None)

    def save(self, path: str | Path) -> Path:
        """Write the history as JSON (folders are created); returns the path."""
        return write_text_atomically(path, json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "History":
        """Read a history written by :meth:`save`."""
        return cls(**json.loads(Path(path).read_text()))
