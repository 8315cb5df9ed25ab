"""What a run shows, in words computed from its :class:`History`: the Result table and a diagnosis.

Notebooks display these instead of typing numbers, so the text always matches the run above it.
"""

from .history import History

TARGET = 99.4


class Markdown(str):
    """A string that Jupyter renders as Markdown (and prints as itself elsewhere)."""

    def _repr_markdown_(self) -> str:
        return str(self)


def result(history: History, target: float = TARGET) -> Markdown:
    """Parameters, best train and test accuracy with their epochs, the last epoch and its gap."""
    best_train = history.train_acc.index(history.best_train_acc) + 1
    gap = history.train_acc[-1] - history.test_acc[-1]
    first = history.first_epoch_reaching(target)
    rows = [
        ("Parameters", f"{history.meta.get('parameters', 0):,}"),
        ("Best train accuracy", f"{history.best_train_acc:.2f}% (epoch {best_train})"),
        ("Best test accuracy", f"{history.best_test_acc:.2f}% (epoch {history.best_epoch})"),
        ("Last epoch: train / test", (f"{history.train_acc[-1]:.2f}% / {history.test_acc[-1]:.2f}% "
                                     f"(epoch {history.epochs})")),
        ("Gap, train − test (last epoch)", f"{gap:+.2f} points"),
        (f"First epoch ≥ {target}%", f"{first}" if first else "not reached"),
        ("Time per epoch", f"{sum(history.seconds) / history.epochs:.1f} s on {history.meta.get('device', '?')}"),
    ]
    return Markdown("| Result | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows))


def diagnosis(history: History, overfit_gap: float = 0.3) -> Markdown:
    """Over- or under-fitting, judged from the curves the way the notebooks explain it."""
    gap = history.train_acc[-1] - history.test_acc[-1]
    if gap < 0:
        verdict = (f"**Test above train** by {-gap:.2f} points: training is made harder than testing "
                   "(dropout or augmentation act only in training). No over-fitting; the network could "
                   "still learn more from its training set.")
    elif history.best_train_acc < 99.0:
        verdict = (f"**Under-fitting:** the best training accuracy is {history.best_train_acc:.2f}%; the network "
                   "cannot yet fit its own training images, so there is nothing to regularise. It needs "
                   "capacity, more epochs or a better optimisation (BatchNorm, a learning-rate schedule).")
    elif gap > overfit_gap:
        verdict = (f"**Over-fitting:** training accuracy is {gap:.2f} points above test accuracy in the last "
                   "epoch; the network learns its training images better than digits in general.")
    else:
        verdict = f"**Train and test agree** within {gap:.2f} points: no sign of over-fitting."
    notes = [verdict]
    best_loss_epoch = history.test_loss.index(min(history.test_loss)) + 1
    if history.epochs >= 4 and best_loss_epoch <= history.epochs - 3 and history.test_loss[-1] > 1.05 * min(
            history.test_loss):
        notes.append(f"The test loss was lowest at epoch {best_loss_epoch} and has risen since: more "
                     "epochs now make the model more confident on its mistakes.")
    last = history.test_acc[-3:]
    if len(last) == 3 and last[0] < last[1] < last[2]:
        notes.append("Test accuracy still rose in each of the last three epochs: more epochs, or a "
                     "schedule that spends them better, would help.")
    return Markdown("\n\n".join(notes))
