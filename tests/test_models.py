"""Models and recipes: exact parameter counts, 003's published table, output shapes, the registry."""

import itertools
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mnist_course.errors import CourseError
from mnist_course.models import ConvBlock, Net, PaddedNet, final
from mnist_course.recipes import Recipe, make_optimizer, make_scheduler
from mnist_course.registry import MODELS, RECIPES, get_model, model_names
from mnist_course.schedule import PiecewiseLinear, lr_schedule
from mnist_course.summary import count_parameters, summary_text

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ref001", 9_962), ("ref002", 18_520), ("ref003", 19_866), ("ref004", 6_040), ("ref3762", 3_762)],
)
def test_reproductions_have_the_published_parameter_counts(name, expected):
    assert count_parameters(get_model(name)) == expected


def test_ref003_summary_matches_the_published_table():
    published = (DATA / "ref003_summary.txt").read_text()
    assert summary_text(get_model("ref003")) == published


@pytest.mark.parametrize("name", model_names())
def test_every_model_outputs_log_probabilities(name):
    torch.manual_seed(0)
    model = get_model(name).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("name", [n for n in model_names() if n != "baseline"])
def test_models_stay_under_the_course_budget(name):
    assert count_parameters(get_model(name)) < 20_000


def test_final_is_under_8000_parameters():
    assert count_parameters(get_model("final")) < 8_000


def test_registry_holds_the_course_and_the_reproductions():
    course = ["baseline", "skeleton", "batchnorm", "dropout", "gap", "final", "tiny"]
    assert model_names() == [*course, "ref001", "ref002", "ref003", "ref004", "ref3762"]
    assert model_names() == list(MODELS)


def test_unknown_model_lists_the_names():
    with pytest.raises(CourseError) as excinfo:
        get_model("resnet")
    message = str(excinfo.value)
    assert message.startswith("unknown model 'resnet'; choose one of: ")
    assert all(name in message for name in model_names())


def test_convblock_rejects_an_unknown_order():
    with pytest.raises(ValueError, match="order"):
        ConvBlock(1, 8, order="bn-conv-relu")


def test_every_model_has_a_recipe():
    assert set(RECIPES) == set(model_names())


@pytest.mark.parametrize("name", model_names())
def test_recipe_builds_its_optimizer_and_scheduler(name):
    recipe = RECIPES[name]
    assert recipe.source
    optimizer = make_optimizer(get_model(name), recipe)
    scheduler = make_scheduler(optimizer, recipe, steps_per_epoch=10)
    assert (scheduler is None) == (recipe.scheduler is None)
    # OneCycleLR starts at max_lr / div_factor (25 by default) and peaks at the recipe's lr.
    start = recipe.lr / recipe.scheduler_args.get("div_factor", 25) if recipe.scheduler == "onecycle" else recipe.lr
    assert optimizer.param_groups[0]["lr"] == pytest.approx(start)


@pytest.mark.parametrize("scheduler", ["step", "multistep", "onecycle", "plateau", "piecewise", None])
def test_make_scheduler_knows_every_kind(scheduler):
    args = {
        "step": {"step_size": 5},
        "multistep": {"milestones": [5, 10]},
        "onecycle": {},
        "plateau": {"mode": "min"},
        "piecewise": {"epochs": [0, 1], "lrs": [0.01, 0.0]},
        None: {},
    }[scheduler]
    recipe = Recipe(optimizer="adam", lr=0.01, scheduler=scheduler, scheduler_args=args)
    optimizer = make_optimizer(torch.nn.Linear(2, 2), recipe)
    assert isinstance(optimizer, torch.optim.Adam)
    result = make_scheduler(optimizer, recipe, steps_per_epoch=10)
    assert (result is None) == (scheduler is None)


def test_a_onecycle_recipe_lasts_the_run_less_its_hold_epochs():
    whole = Recipe(optimizer="sgd", lr=0.1, scheduler="onecycle", epochs=15)
    shorter = Recipe(optimizer="sgd", lr=0.1, scheduler="onecycle", epochs=15, hold_epochs=1)
    for recipe, epochs in ((whole, 15), (shorter, 14), (replace(shorter, epochs=5), 4)):
        optimizer = make_optimizer(torch.nn.Linear(2, 2), recipe)
        assert make_scheduler(optimizer, recipe, steps_per_epoch=10).total_steps == 10 * epochs


def test_ref003_recipe_follows_its_training_log():
    recipe = RECIPES["ref003"]
    assert (recipe.lr, recipe.batch_size, recipe.scheduler) == (0.05, 512, "step")
    assert 60_000 // recipe.batch_size + 1 == 118
    optimizer = make_optimizer(get_model("ref003"), recipe)
    scheduler = make_scheduler(optimizer, recipe, steps_per_epoch=118)
    lrs = []
    for _ in range(recipe.epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:15] == [0.05] * 15
    assert lrs[15:] == pytest.approx([0.005] * 4)


def test_recipe_rejects_unknown_names():
    with pytest.raises(ValueError, match="optimizer"):
        Recipe(optimizer="rmsprop", lr=0.01)
    with pytest.raises(ValueError, match="scheduler"):
        Recipe(optimizer="sgd", lr=0.01, scheduler="cosine")


def test_the_course_steps_are_one_family():
    names = ("skeleton", "batchnorm", "dropout", "gap", "final", "tiny")
    counts = {name: count_parameters(get_model(name)) for name in names}
    assert counts == {"skeleton": 7_780, "batchnorm": 7_840, "dropout": 7_840, "gap": 6_040, "final": 7_952, "tiny": 3_668}
    assert counts["tiny"] < count_parameters(get_model("ref3762")) == 3_762
    assert isinstance(final(), Net) and str(get_model("batchnorm")) == str(Net(bn=True))
    assert count_parameters(get_model("baseline")) == 195_482


def test_the_design_search_builds_the_final_family_with_the_course_code():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import design_search

    kwargs, changes = design_search.CANDIDATES["final"]
    assert str(Net(bn=True, head="gap", **kwargs)) == str(final()) and changes == {}
    kwargs, changes = design_search.CANDIDATES["nopad-68-8-9,9,9,10"]  # the search's pick under 3,762
    assert str(design_search.build(kwargs)) == str(get_model("tiny")) and changes == {"recipe": "ref3762"}
    assert RECIPES["tiny"] is RECIPES["ref3762"]
    kwargs, _ = design_search.CANDIDATES["ref3762"]
    assert str(design_search.build(kwargs)) == str(get_model("ref3762"))


def test_the_piecewise_schedule_passes_through_its_points_per_batch():
    recipe = RECIPES["ref3762"]
    assert (recipe.momentum, recipe.batch_size, recipe.scheduler) == (0.0, 32, "piecewise")
    optimizer = make_optimizer(get_model("ref3762"), recipe)
    lrs = lr_schedule(optimizer, make_scheduler(optimizer, recipe, steps_per_epoch=10), 10, recipe.epochs)
    assert [lrs[10 * e] for e in (0, 1, 2, 5, 8)] == pytest.approx([0.05, 0.075, 0.1, 0.055, 0.01])
    assert lrs[-1] == pytest.approx(0.01 / 70) and lrs[-1] > 0  # the last step of epoch 15, before 0
    assert all(a > b for a, b in itertools.pairwise(lrs[20:])), "falls every batch after epoch 2"
    with pytest.raises(ValueError, match="rising epochs"):
        PiecewiseLinear(optimizer, [0, 8, 2], [0.1, 0.1, 0.1], steps_per_epoch=10)


def test_the_padded_family_keeps_the_size_until_each_pool():
    net = PaddedNet(((4, 4, 4), (8, 8), (8, 8)))
    assert count_parameters(net) == 2_508 and count_parameters(PaddedNet(bias=True)) > 2_508
    shapes = []
    for layer in net.layers:
        layer.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
    net(torch.zeros(2, 1, 28, 28))
    assert shapes[:3] == [(4, 28, 28)] * 3 and shapes[4] == (8, 14, 14) and shapes[7] == (8, 7, 7)
    assert shapes[-1] == (10,)
