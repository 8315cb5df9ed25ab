"""Words and tables computed from runs, so a notebook's text always matches the numbers above it."""

import inspect
import platform

import torch

from .history import SPLIT_NAMES, History

TARGET = 99.4


class Markdown(str):
    """A string that Jupyter renders as Markdown (and prints as itself elsewhere)."""

    def _repr_markdown_(self) -> str:
        return str(self)


def source(obj: object) -> Markdown:
    """The source code of a class or function, shown as a code block: a notebook shows the package's code."""
    return Markdown(f"```python\n{inspect.getsource(obj).rstrip()}\n```")


def environment_line(device: str, seconds: float | None = None) -> str:
    """Where (and how long): device, its name, threads, torch and Python versions, and wall time if given."""
    name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "CPU"
    line = (f"device: {device} ({name}, {torch.get_num_threads()} threads), torch {torch.__version__}, "
            f"Python {platform.python_version()}")
    return line if seconds is None else f"{line}, wall time {seconds / 60:.1f} min"


def result(history: History, target: float = TARGET) -> Markdown:
    """Parameters, best and last train and held-out accuracy, their gap, and test accuracy if measured."""
    if not history.epochs:
        return Markdown("| Result | |\n|---|---|\n| Epochs finished | 0 |")
    train, held = history.acc(history.train_split), history.acc()
    train_name, held_name = SPLIT_NAMES.get(history.train_split, "train (running)"), SPLIT_NAMES[history.held_out]
    best_train = max(train)
    first = history.first_epoch_reaching(target)
    rows = [
        ("Parameters", f"{history.meta.get('parameters', 0):,}"),
        (f"Best {train_name} accuracy", f"{best_train:.2f}% (epoch {train.index(best_train) + 1})"),
        (f"Best {held_name} accuracy", f"{history.best_acc:.2f}% (epoch {history.best_epoch})"),
        (f"Last epoch: {train_name} / {held_name}", f"{train[-1]:.2f}% / {held[-1]:.2f}% (epoch {history.epochs})"),
        (f"Gap, train − {held_name} (last epoch)", f"{train[-1] - held[-1]:+.2f} points"),
        (f"First epoch ≥ {target}% ({held_name})", f"{first}" if first else "not reached"),
        ("Time per epoch", f"{sum(history.seconds) / history.epochs:.1f} s on {history.meta.get('device', '?')}"),
    ]
    if history.held_out == "val" and history.test_acc:
        rows.insert(5, ("Test accuracy, last epoch (reported, not used)", f"{history.test_acc[-1]:.2f}%"))
    return Markdown("| Result | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows))


def diagnosis(history: History, overfit_gap: float = 0.3) -> Markdown:
    """Over- or under-fitting (train against held-out accuracy), and whether more epochs could still help."""
    if not history.epochs:
        return Markdown("No epoch finished: nothing to diagnose.")
    train, held, held_name = history.acc(history.train_split), history.acc(), SPLIT_NAMES[history.held_out]
    gap, best_train = train[-1] - held[-1], history.best_train_acc
    how = "in eval mode" if history.train_split == "train_eval" else "a running average in train mode"
    if gap < 0:
        verdict = (f"**{held_name.capitalize()} above train** by {-gap:.2f} points (train accuracy {how}). "
                   "No over-fitting; the network could still learn more from its training set.")
    elif best_train < 99.0:
        verdict = (f"**Under-fitting:** the best training accuracy ({how}) is {best_train:.2f}%; the network cannot "
                   "yet fit its own training images, so there is nothing to regularise. It needs capacity, more "
                   "epochs or a better optimisation (BatchNorm, a learning-rate schedule).")
    elif gap > overfit_gap:
        verdict = (f"**Over-fitting:** training accuracy ({how}) is {gap:.2f} points above {held_name} accuracy in "
                   "the last epoch; the network learns its training images better than digits in general.")
    else:
        verdict = f"**Train and {held_name} agree** within {gap:.2f} points (train {how}): no sign of over-fitting."
    notes = [verdict]
    losses = history.loss()
    low = losses.index(min(losses)) + 1
    if history.epochs >= 4 and low <= history.epochs - 3 and losses[-1] > 1.05 * min(losses):
        notes.append(f"The {held_name} loss was lowest at epoch {low} and has risen since: more epochs now make "
                     "the model more confident on its mistakes.")
    annealed = bool(history.lr_per_step) and history.lr_per_step[-1] <= 0.05 * max(history.lr_per_step)
    if len(held) >= 3 and held[-3] < held[-2] < held[-1]:
        notes.append(f"{held_name.capitalize()} accuracy still rose in each of the last two epochs" + (
            f", but the learning rate has annealed to {history.lr_per_step[-1]:.2g} (from a peak of "
            f"{max(history.lr_per_step):.2g}): more epochs at that rate would change little; a longer schedule "
            "is the lever." if annealed else ": more epochs, or a schedule that spends them better, might help."))
    return Markdown("\n\n".join(notes))
