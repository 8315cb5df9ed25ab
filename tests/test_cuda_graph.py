"""CUDA graphs: a graphed step trains exactly like the plain loop. The GPU tests run where CUDA is (the
device machine, a learner's Colab); on a CPU only the guard rails are checked."""

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import TinyNet
from mnist_course.cuda_graph import GraphedStep
from mnist_course.data import DeviceLoader
from mnist_course.mnist_files import load_mnist
from mnist_course.registry import RECIPES, get_model
from mnist_course.reproduce import run_recipe
from mnist_course.train import train_epoch

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_a_graph_needs_a_cuda_model(tiny_net):
    with pytest.raises(ValueError, match="CUDA"):
        GraphedStep(tiny_net, 32)


def test_a_run_on_a_cpu_uses_the_plain_step():
    history = run_recipe("gap", RECIPES["gap"], device="cpu", quick=True, progress="off", cuda_graph=True)
    assert history.meta["cuda_graph"] is False and history.epochs == 1


@cuda
def test_building_the_graph_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = get_model("final").cuda().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    GraphedStep(model, 64)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def mnist_batches(batch_size: int = 128, n: int = 1000) -> list[tuple[torch.Tensor, torch.Tensor]]:
    images, labels = load_mnist(train=False)
    loader = DeviceLoader(images[:n].cuda(), labels[:n].cuda(), batch_size, shuffle=True, seed=0)
    return [(x.clone(), y.clone()) for x, y in loader]


def sgd(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)


@cuda
def test_graphed_training_matches_eager_training(monkeypatch):
    """Same start, same batches (the last one smaller), SGD with momentum and weight decay: the losses,
    weights and BatchNorm statistics of the two runs agree to float32 rounding."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    torch.manual_seed(0)
    eager = get_model("final").cuda()
    graphed = copy.deepcopy(eager)
    batches = mnist_batches()
    assert len(batches[-1][1]) == 1000 % 128  # the eager fallback for a smaller batch is exercised too
    opt_e, opt_g, step = sgd(eager), sgd(graphed), GraphedStep(graphed, 128)
    for _ in range(2):
        loss_e, acc_e = train_epoch(eager, batches, opt_e, progress="off")
        loss_g, acc_g = train_epoch(graphed, batches, opt_g, step=step, progress="off")
        assert loss_g == pytest.approx(loss_e, rel=1e-4) and acc_g == pytest.approx(acc_e, abs=0.2)
    for (key, a), b in zip(eager.state_dict().items(), graphed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-5), key
    x = batches[0][0]
    assert torch.allclose(eager.eval()(x), graphed.eval()(x), atol=1e-4)


@cuda
def test_graphed_dropout_draws_new_masks_and_learns():
    """Dropout draws new random numbers at every replay (the graph-safe generator): two replays of one
    batch give different gradients, and the network learns."""
    torch.manual_seed(0)
    model = get_model("dropout").cuda()
    optimizer, step = sgd(model), GraphedStep(model, 128)
    batches = mnist_batches(n=2000)
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)  # gradients only: the weights stay
    grads = [torch.cat([p.grad.flatten() for p in model.parameters()]).clone()
             for _ in range(2) if step(model, *batches[0], frozen)]
    assert not torch.allclose(grads[0], grads[1])
    losses = [train_epoch(model, batches, optimizer, step=step, progress="off")[0]
              for _ in range(3)]
    assert losses[2] < losses[0] and all(torch.isfinite(p).all() for p in model.parameters())


@cuda
def test_graphs_change_the_gradients_of_every_batch():
    """A replay must see the new batch: gradients of two different batches differ, of the same batch agree."""
    torch.manual_seed(0)
    model = TinyNet().cuda()
    step = GraphedStep(model, 16)
    x1, x2 = torch.randn(16, 1, 28, 28, device="cuda"), torch.randn(16, 1, 28, 28, device="cuda")
    y = torch.randint(0, 10, (16,), device="cuda")
    grads, frozen = [], torch.optim.SGD(model.parameters(), lr=0.0)
    for x in (x1, x2, x1):
        step(model, x, y, frozen)
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]).clone())
    reference = torch.autograd.grad(F.nll_loss(model(x1), y), list(model.parameters()))
    assert not torch.allclose(grads[0], grads[1])
    assert torch.allclose(grads[0], grads[2], atol=1e-6)
    assert torch.allclose(grads[0], torch.cat([g.flatten() for g in reference]), atol=1e-5)
