"""The Result table and the diagnosis are computed from the History, so they can be checked."""

from mnist_course.history import History
from mnist_course.report import diagnosis, result


def run(train_acc, test_acc, test_loss=None) -> History:
    n = len(test_acc)
    return History(train_acc=train_acc, test_acc=test_acc, test_loss=test_loss or [0.1] * n,
                   train_loss=[0.1] * n, seconds=[2.0] * n, meta={"parameters": 7736, "device": "cpu"})


def test_result_reports_best_epochs_gap_and_target():
    text = result(run([98.0, 99.5, 99.7], [98.9, 99.45, 99.41]))
    assert "| Parameters | 7,736 |" in text
    assert "99.70% (epoch 3)" in text and "99.45% (epoch 2)" in text
    assert "+0.29 points" in text and "| First epoch ≥ 99.4% (test) | 2 |" in text
    assert "2.0 s on cpu" in text and text._repr_markdown_() == str(text)


def test_diagnosis_names_each_case():
    assert "Under-fitting" in diagnosis(run([80.0, 95.0], [79.0, 94.0]))
    assert "Test above train" in diagnosis(run([80.0, 95.0], [85.0, 96.0]))  # dropout, not under-fitting
    assert "Over-fitting" in diagnosis(run([99.5, 99.9], [99.0, 99.1]))
    assert "Test above train" in diagnosis(run([99.1, 99.2], [99.3, 99.4]))
    assert "agree" in diagnosis(run([99.1, 99.3], [99.1, 99.2]))


def test_diagnosis_sees_a_rising_test_loss_and_a_still_rising_accuracy():
    rising_loss = run([99.5] * 6, [99.0] * 6, test_loss=[0.05, 0.03, 0.02, 0.025, 0.03, 0.04])
    assert "lowest at epoch 3" in diagnosis(rising_loss)
    assert "still rose" in diagnosis(run([99.5] * 4, [99.0, 99.1, 99.2, 99.3]))
    assert "still rose" not in diagnosis(run([99.5] * 4, [99.0, 99.3, 99.2, 99.3]))


def test_diagnosis_knows_when_the_schedule_has_annealed():
    rising = run([99.5] * 4, [99.0, 99.1, 99.2, 99.3])
    assert "might help" in diagnosis(rising)
    rising.lr_per_step = [0.01, 0.1, 0.05, 0.0001]  # a OneCycle run at its floor: more epochs at that rate do little
    text = diagnosis(rising)
    assert "annealed to 0.0001" in text and "longer schedule" in text and "might help" not in text
    assert "last two epochs" in text
