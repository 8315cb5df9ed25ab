"""The engine: learning, determinism, schedulers, output format, checkpoints, Ctrl-C, summary, budget."""

import re
import signal

import pytest
import torch

from conftest import TinyNet
from mnist_course.augment import Augment
from mnist_course.data import get_data
from mnist_course.errors import CourseError
from mnist_course.history import History
from mnist_course.quick import quick_mode
from mnist_course.schedule import lr_schedule
from mnist_course.summary import check_budget, count_parameters, summary_text
from mnist_course.train import (
    BestCheckpoint,
    evaluate,
    fit,
    load_checkpoint,
    predict,
    save_checkpoint,
    seed_everything,
    train_step,
)


def small_data(**kw):
    kw = {"train_size": 2_000, "test_size": 500, "batch_size": 64, "device": "cpu", "seed": 0} | kw
    return get_data(**kw)


def test_a_short_fit_lowers_the_loss(tiny_net):
    data = small_data()
    before, _, _ = evaluate(tiny_net, data.test)
    optimizer = torch.optim.Adam(tiny_net.parameters(), lr=0.01)
    history = fit(tiny_net, data, 2, optimizer, progress="off")
    assert history.epochs == 2 and history.finished
    assert min(history.test_loss) < 0.9 * before  # with 1 or 2 threads: the digits of the sums differ
    assert history.train_loss[1] < history.train_loss[0]
    assert history.meta["parameters"] == count_parameters(tiny_net) and history.meta["epochs"] == 2


def test_same_seed_on_cpu_gives_identical_histories():
    def run(seed):
        seed_everything(seed)  # the weights are drawn before fit, so seed before building the model
        data = small_data(augment=Augment(10, 0.1), seed=seed)
        h = fit(TinyNet(), data, 2, progress="off")
        return [h.train_loss, h.train_acc, h.test_loss, h.test_acc, h.lr_per_step]

    first = run(7)
    assert run(7) == first
    assert run(8) != first


def test_onecycle_steps_every_batch_and_steplr_every_epoch(tiny_net):
    data = small_data(batch_size=250)  # 8 batches per epoch
    opt = torch.optim.SGD(tiny_net.parameters(), lr=0.1)
    onecycle = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=len(data.train))
    h = fit(tiny_net, data, 2, opt, onecycle, progress="off")
    assert len(h.lr_per_step) == 16 and len(set(h.lr_per_step)) == 16
    assert onecycle.last_epoch == 15  # the cycle's last step: its lowest rate, where a longer run would stay

    opt = torch.optim.SGD(tiny_net.parameters(), lr=0.1)
    step = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    h = fit(tiny_net, data, 3, opt, step, progress="off")
    assert h.lr == pytest.approx([0.1, 0.05, 0.025])
    assert len(set(h.lr_per_step[:8])) == 1


def test_a_onecycle_shorter_than_the_run_holds_its_lowest_rate(tiny_net):
    data = small_data(batch_size=250)  # 8 batches per epoch
    opt = torch.optim.SGD(tiny_net.parameters(), lr=0.1)
    onecycle = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=len(data.train))
    h = fit(tiny_net, data, 3, opt, onecycle, progress="off")
    assert h.epochs == 3 and len(h.lr_per_step) == 24
    assert len(set(h.lr_per_step[:16])) == 16  # the cycle, one rate per step
    assert set(h.lr_per_step[15:]) == {min(h.lr_per_step)}  # then its last and lowest rate, held


def test_the_simulated_schedule_is_the_one_fit_follows(tiny_net):
    data = small_data(batch_size=250)
    opt = torch.optim.SGD(tiny_net.parameters(), lr=0.1)
    onecycle = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=len(data.train))
    simulated = lr_schedule(opt, onecycle, len(data.train), 3)
    assert onecycle.last_epoch == 0 and opt.param_groups[0]["lr"] == simulated[0]  # state put back
    assert fit(tiny_net, data, 3, opt, onecycle, progress="off").lr_per_step == pytest.approx(simulated)


@pytest.mark.parametrize("val_size", [0, 500])
def test_plateau_is_stepped_on_the_validation_loss_never_the_test_loss(tiny_net, val_size):
    opt = torch.optim.SGD(tiny_net.parameters(), lr=0.05, momentum=0.9)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", patience=0, factor=0.5)
    h = fit(tiny_net, small_data(val_size=val_size), 2, opt, plateau, progress="off")
    assert plateau.best == pytest.approx(min(h.val_loss if val_size else h.train_eval_loss))
    assert min(h.test_loss) != pytest.approx(plateau.best)


def test_bar_output_reads_like_the_classic_scripts(tiny_net, capsys):
    fit(tiny_net, small_data(train_size=640), 1, progress="bar")
    out, err = capsys.readouterr()
    assert re.search(r"^Test set: Average loss: \d\.\d{4}, Accuracy: \d+/500 \(\d+\.\d{2}%\)$", out, re.MULTILINE)
    assert re.search(r"Train: Loss=\d+\.\d{4} Batch_id=9 Accuracy=\d+\.\d{2}", err)


def test_lines_output_is_plain_text_for_saved_notebooks(tiny_net, capsys):
    fit(tiny_net, small_data(train_size=640), 2, progress="lines")
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["Epoch 1", "Train", "Train set (eval mode)", "Test set"] * 1 + [
        "Epoch 2", "Train", "Train set (eval mode)", "Test set"]
    assert re.fullmatch(r"Train: Loss=\d+\.\d{4} Batch_id=9 Accuracy=\d+\.\d{2}", lines[1])


def test_progress_off_is_silent(tiny_net, capsys):
    fit(tiny_net, small_data(train_size=640), 1, progress="off")
    assert capsys.readouterr() == ("", "")


def test_the_step_is_the_tutorial_step(tiny_net):
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    opt = torch.optim.SGD(tiny_net.parameters(), lr=0.1)
    before = [p.detach().clone() for p in tiny_net.parameters()]
    out, loss = train_step(tiny_net, x, y, opt)
    assert out.shape == (8, 10) and loss.item() == pytest.approx(torch.nn.functional.nll_loss(out, y).item())
    assert any(not torch.equal(a, b) for a, b in zip(before, tiny_net.parameters()))


def test_best_checkpoint_holds_the_best_validation_epoch(tiny_net, tmp_path):
    data = small_data(val_size=500)
    history = fit(tiny_net, data, 3, progress="off", callbacks=[BestCheckpoint(tmp_path / "best.pt")])
    restored = load_checkpoint(TinyNet(), tmp_path / "best.pt")
    _, correct, total = evaluate(restored, data.val)
    assert 100 * correct / total == history.best_acc == max(history.val_acc)
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # no temporary file left


def test_without_a_validation_split_the_checkpoint_is_the_last_epoch_not_the_best_test_one(tiny_net, tmp_path):
    data = small_data()
    history = fit(tiny_net, data, 2, progress="off", callbacks=[BestCheckpoint(tmp_path / "last.pt")])
    _, correct, total = evaluate(load_checkpoint(TinyNet(), tmp_path / "last.pt"), data.test)
    assert 100 * correct / total == history.test_acc[-1]


def test_checkpoint_round_trip(tiny_net, tmp_path):
    path = save_checkpoint(tiny_net, tmp_path / "m.pt")
    other = load_checkpoint(TinyNet(), path)
    for a, b in zip(tiny_net.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


def test_ctrl_c_returns_the_history_so_far(tiny_net, capsys):
    data = small_data(batch_size=200)  # 10 batches per epoch
    calls = {"n": 0}

    def press_ctrl_c(module, inputs):
        calls["n"] += 1
        if calls["n"] == 14 and module.training:  # 4th training batch of epoch 2
            signal.raise_signal(signal.SIGINT)  # the real signal: Python turns it into KeyboardInterrupt

    tiny_net.register_forward_pre_hook(press_ctrl_c)
    history = fit(tiny_net, data, 5, progress="off")
    assert history.interrupted and history.epochs == 1 and not history.finished
    assert "kept the 1 finished epoch(s) of 5" in capsys.readouterr().out


def test_history_json_round_trip(tiny_net, tmp_path):
    history = fit(tiny_net, small_data(train_size=500), 1, progress="off", name="tiny")
    loaded = History.load(history.save(tmp_path / "runs" / "tiny.json"))
    assert loaded == history and loaded.best_epoch == 1


def test_predict_restores_the_mode_and_accepts_raw_images(tiny_net):
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    tiny_net.train()
    preds = predict(tiny_net, images)
    assert preds.shape == (5,) and preds.dtype == torch.long and tiny_net.training


def test_quick_mode_is_read_from_the_environment_and_caps_nothing(monkeypatch, tiny_net):
    monkeypatch.setenv("MNIST_COURSE_SMOKE", "1")
    assert quick_mode()
    history = fit(tiny_net, small_data(train_size=500), 2, progress="off")
    assert history.epochs == 2 and history.meta["train_images"] == 500  # the caller decides, not the package
    monkeypatch.setenv("MNIST_COURSE_SMOKE", "0")
    assert not quick_mode()


def test_non_positive_epochs_are_refused(tiny_net):
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        fit(tiny_net, small_data(train_size=100), 0)


def test_summary_is_torchsummary_on_cpu_and_budget_is_enforced(tiny_net):
    text = summary_text(tiny_net)
    assert "Conv2d-1" in text and f"Total params: {count_parameters(tiny_net):,}" in text
    assert check_budget(tiny_net, 20_000) == count_parameters(tiny_net)
    with pytest.raises(CourseError, match=f"{count_parameters(tiny_net):,} parameters"):
        check_budget(tiny_net, max_params=1_000)
