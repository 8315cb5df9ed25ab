"""Receptive-field table: published columns, exact agreement with input gradients, rendering."""

import copy
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mnist_course.data import normalize
from mnist_course.receptive_field import (
    RFTable,
    effective_receptive_field,
    receptive_field_table,
)
from mnist_course.registry import get_model


def _spatial_rows_before_gap(table: RFTable) -> list:
    rows = []
    for row in table.rows:
        if row.note == "global pool":
            break
        if row.type in ("Conv2d", "MaxPool2d", "AvgPool2d"):
            rows.append(row)
    return rows


def test_ref002_matches_its_published_receptive_fields():
    table = receptive_field_table(get_model("ref002"))
    rows = [r for r in _spatial_rows_before_gap(table) if r.kernel != 1]  # 002 lists no 1×1 rows
    assert [r.rf for r in rows] == [3, 5, 7, 8, 12, 16, 18, 26, 34, 38]
    assert [r.out_size[0] for r in rows] == [28, 28, 28, 14, 14, 14, 7, 7, 7, 3]
    gap = next(r for r in table.rows if r.note == "global pool")
    assert gap.rf == 38 + (3 - 1) * 8  # global pool: the whole extent of the 3×3 map's fields


def test_ref004_matches_its_published_receptive_fields():
    table = receptive_field_table(get_model("ref004"))
    rows = _spatial_rows_before_gap(table)
    assert [r.rf for r in rows] == [3, 5, 5, 6, 10, 14, 18, 22]
    assert [r.out_size[0] for r in rows] == [26, 24, 24, 12, 10, 8, 6, 4]
    assert [r.jump for r in rows] == [1, 1, 1, 2, 2, 2, 2, 2]
    assert table.final_rf == 28


def test_every_registry_model_traces_with_square_numbers():
    for name in ("baseline", "skeleton", "batchnorm", "dropout", "gap", "final", "ref001", "ref003"):
        table = receptive_field_table(get_model(name))
        assert table.final_rf == 28, name
        assert table.rows[-1].out_size == (1, 1), name


def test_known_small_cases():
    table = receptive_field_table(nn.Sequential(
        nn.Conv2d(1, 2, 3, dilation=2),  # k_eff 5
        nn.Conv2d(2, 2, 3, stride=2, padding=1),
        nn.Conv2d(2, 2, 3),
        nn.MaxPool2d(2),
        nn.Conv2d(2, 2, (3, 5)),
    ), input_size=(1, 32, 32))
    assert [r.rf for r in table] == [5, 7, 11, 13, (21, 29)]
    assert [r.jump for r in table] == [1, 2, 2, 4, 4]
    assert [r.start for r in table] == [2, 2, 4, 5, (9, 13)]
    assert [r.out_size for r in table] == [(28, 28), (14, 14), (12, 12), (6, 6), (4, 2)]
    assert table.rows[-1].field_box(1, 0) == (13 - 10, 13 - 14, 13 + 10, 13 + 14)


def test_geometry_keeping_layers_and_global_heads():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.1),
                          nn.Conv2d(4, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    table = receptive_field_table(model)
    assert [r.rf for r in table] == [3, 3, 3, 3, 5, 5 + 23, 28, 28]
    assert [r.type for r in table][-3:] == ["AdaptiveAvgPool2d", "Flatten", "Linear"]
    # a Linear layer on a flattened 26×26 map sees all of it
    dense = receptive_field_table(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 26 * 26, 10)))
    assert dense.final_rf == 3 + 25
    # an AvgPool2d whose window is the whole map is a global pool too
    pooled = receptive_field_table(nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(26)))
    assert pooled.rows[-1].note == "global pool" and pooled.final_rf == 28


def test_trace_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    receptive_field_table(model)
    effective_receptive_field(model, "1", torch.randn(2, 1, 28, 28))
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks for m in model.modules())


def test_functional_pooling_is_reported():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3)

        def forward(self, x):
            return self.b(F.max_pool2d(self.a(x), 2))

    with pytest.warns(UserWarning, match="nn.MaxPool2d"):
        receptive_field_table(Functional())


def test_text_and_html_rendering():
    table = receptive_field_table(nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 12, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(12, 12, 3), nn.Conv2d(12, 12, 3), nn.Conv2d(12, 12, 3), nn.Conv2d(12, 12, 3),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 10)))
    text = str(table)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["name", "type", "kernel"]
    assert set(lines[1]) == {"-"}
    assert len(lines) == len(table) + 3
    assert "final receptive field 28" in lines[-1]
    rf_column = lines[0].index(" rf") + 3  # numbers are right-aligned under their header
    for line, row in zip(lines[2:], table.rows):
        assert line[:rf_column].endswith(str(row.rf))
    html = table._repr_html_()
    assert html.startswith("<table") and html.count("<tr>") == len(table) + 1
    assert "<td>MaxPool2d</td>" in html and "global pool" in html
    assert table["5"].rf == 6 and table[0].rf == 3 and table[-1] is table.rows[-1]
    assert list(table) == table.rows and len(table) == 13
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        table["nope"]
    assert repr(table) == str(table) and "final receptive field 28" in repr(table)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_string_padding_and_adaptive_windows():
    same = receptive_field_table(nn.Sequential(nn.Conv2d(1, 1, (3, 4), padding="same", dilation=(2, 1)),
                                               nn.Conv2d(1, 1, 3, padding="valid")))
    assert same[0].padding == (2, 1) and same[0].out_size == (28, 28) and same[0].rf == (5, 4)
    assert same[0].start == (0, 0.5) and same[1].padding == 0 and same[1].out_size == (26, 26)
    adaptive = receptive_field_table(nn.Sequential(nn.AdaptiveMaxPool2d((4, 7)), nn.AdaptiveAvgPool2d(3)))
    assert [(r.kernel, r.stride, r.rf, r.jump, r.note) for r in adaptive] == [
        ((7, 4), (7, 4), (7, 4), (7, 4), ""),
        # 4×7 → 3×3: the widest windows are 2 and 3 wide (rows 0-1, 1-2, 2-3; columns 0-2, 2-4, 4-6)
        ((2, 3), (1, 2), (7 + 7, 4 + 2 * 4), (7, 8), "approximate: uneven adaptive windows")]
    with pytest.raises(NotImplementedError, match="Upsample"):
        receptive_field_table(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Upsample(scale_factor=2)))


# --- exact agreement with input gradients ---------------------------------------------------------


def _random_stack(rng: random.Random, size: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 1
    x = torch.zeros(1, 1, size, size, dtype=torch.float64)
    for _ in range(rng.randint(1, 6)):
        kind = rng.choice(["conv", "conv", "max", "avg"])
        if kind == "conv":
            out = rng.randint(1, 3)
            layer = nn.Conv2d(channels, out, (rng.randint(1, 5), rng.randint(1, 5)),
                              stride=(rng.randint(1, 2), rng.randint(1, 2)),
                              padding=(rng.randint(0, 2), rng.randint(0, 2)),
                              dilation=(rng.randint(1, 2), rng.randint(1, 2)), bias=False)
        elif kind == "max":
            k = rng.randint(2, 3)
            layer = nn.MaxPool2d(k, stride=rng.randint(1, 2), padding=rng.randint(0, k // 2),
                                 dilation=rng.randint(1, 2), ceil_mode=rng.random() < 0.3)
        else:
            k = rng.randint(2, 3)
            layer = nn.AvgPool2d(k, stride=rng.randint(1, 2), padding=rng.randint(0, k // 2),
                                 ceil_mode=rng.random() < 0.3, count_include_pad=rng.random() < 0.5)
        layer = layer.double()
        try:
            y = layer(x)
        except RuntimeError:  # the map became too small for this layer
            break
        if min(y.shape[-2:]) < 1:
            break
        layers.append(layer)
        x = y
        channels = y.shape[1]
    if not layers:
        layers.append(nn.Conv2d(1, 1, 3, bias=False).double())
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            with torch.no_grad():
                layer.weight.uniform_(0.5, 1.5)
    return nn.Sequential(*layers).eval()


def _gradient_twin(stack: nn.Sequential) -> nn.Sequential:
    """Max-pools pass gradient to one winner only; a depthwise all-ones conv of the same geometry
    passes it to the whole window, which is what "the field" means."""
    channels, layers = 1, []
    for layer in stack:
        if isinstance(layer, nn.MaxPool2d):
            twin = nn.Conv2d(channels, channels, layer.kernel_size, layer.stride, layer.padding,
                             layer.dilation, groups=channels, bias=False).double()
            nn.init.ones_(twin.weight)
            layers.append(twin)
        else:
            layers.append(layer)
            if isinstance(layer, nn.Conv2d):
                channels = layer.out_channels
    return nn.Sequential(*layers).eval()


def _nonzero_box(grad: torch.Tensor) -> tuple[int, int, int, int]:
    rows = grad.ne(0).any(1).nonzero().flatten()
    cols = grad.ne(0).any(0).nonzero().flatten()
    return (rows.min().item(), cols.min().item(), rows.max().item(), cols.max().item())


def _inside(box: tuple[float, float, float, float], size: int) -> bool:
    top, left, bottom, right = box
    return top >= 0 and left >= 0 and bottom <= size - 1 and right <= size - 1


def test_fields_agree_with_input_gradients_on_random_stacks():
    rng = random.Random(2016)
    torch.manual_seed(2016)
    stacks_checked = units_checked = 0
    for _ in range(100):
        size = rng.randint(24, 48)
        stack = _random_stack(rng, size)
        table = receptive_field_table(stack, input_size=(1, size, size))
        last = table.rows[-1]
        twin = _gradient_twin(stack)
        x = torch.rand(1, 1, size, size, dtype=torch.float64, requires_grad=True)
        y = stack(x)
        try:
            y_twin = twin(x)
        except RuntimeError:  # without ceil_mode the twin's maps can run out a layer earlier
            continue
        assert last.out_size == tuple(y.shape[-2:])  # the table's sizes are the real ones
        candidates = [(i, j) for i in range(min(y.shape[2], y_twin.shape[2]))
                      for j in range(min(y.shape[3], y_twin.shape[3]))
                      if _inside(last.field_box(i, j), size)]
        if not candidates:
            continue
        stacks_checked += 1
        for i, j in rng.sample(candidates, min(3, len(candidates))):
            top, left, bottom, right = last.field_box(i, j)
            (grad,) = torch.autograd.grad(y_twin[0, :, i, j].sum(), x, retain_graph=True)
            assert _nonzero_box(grad[0, 0]) == (top, left, bottom, right), (stack, (i, j))
            # the real max-pool stack only ever reaches pixels inside the field
            (grad,) = torch.autograd.grad(y[0, :, i, j].sum(), x, retain_graph=True)
            t, l, b, r = _nonzero_box(grad[0, 0])
            assert top <= t and left <= l and b <= bottom and r <= right
            units_checked += 1
    assert stacks_checked >= 60 and units_checked >= 150, (stacks_checked, units_checked)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("layer", [lambda: nn.Conv2d(1, 1, (4, 3), padding="same", dilation=(1, 2)),
                                   lambda: nn.Conv2d(1, 1, 4, stride=2, padding="valid"),
                                   lambda: nn.AdaptiveAvgPool2d((4, 7))], ids=["same", "valid", "adaptive"])
def test_string_padding_and_adaptive_pools_agree_with_input_gradients(layer):
    model = nn.Sequential(nn.Conv2d(1, 1, 3, bias=False), layer(), nn.Conv2d(1, 1, (2, 3), bias=False))
    model = model.double()
    for conv in (model[0], model[2]):
        nn.init.uniform_(conv.weight, 0.5, 1.5)  # positive weights: no gradient cancels out
    last = receptive_field_table(model, input_size=(1, 30, 30)).rows[-1]
    x = torch.rand(1, 1, 30, 30, dtype=torch.float64, requires_grad=True)
    y = model(x)
    assert last.out_size == tuple(y.shape[-2:])
    units = [(i, j) for i in range(y.shape[2]) for j in range(y.shape[3])
             if _inside(last.field_box(i, j), 30)]
    assert len(units) >= 4
    for i, j in units:
        (grad,) = torch.autograd.grad(y[0, 0, i, j], x, retain_graph=True)
        assert _nonzero_box(grad[0, 0]) == last.field_box(i, j), (i, j)


def test_effective_field_lies_inside_the_theoretical_field():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, dilation=2),
                          nn.ReLU(), nn.Conv2d(4, 4, 3))
    table = receptive_field_table(model)
    images = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8)
    for name in ("0", "3", "5"):
        row = table[name]
        h, w = row.out_size
        erf = effective_receptive_field(model, name, images)
        assert erf.shape == (28, 28) and erf.sum() > 0
        box = row.field_box(h // 2, w // 2)  # the default position is the centre
        t, l, b, r = _nonzero_box(erf)
        assert box[0] <= t and box[1] <= l and b <= box[2] and r <= box[3]
    corner = effective_receptive_field(model, "5", images, position=(0, 0))
    box, (t, l, b, r) = table["5"].field_box(0, 0), _nonzero_box(corner)
    centre = table["5"].field_box(3, 3)  # the position moves the unit: its field reaches above the centre's
    assert box[0] <= t and box[1] <= l and b <= box[2] and r <= box[3] and t < centre[0] and l < centre[1]
    with pytest.raises(ValueError, match="outside"):
        effective_receptive_field(model, "5", images, position=(99, 0))
    with pytest.raises(KeyError, match="no layer named"):
        effective_receptive_field(model, "nope", images)


def test_effective_field_is_the_mean_over_images_of_the_normalised_input_gradient():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.Flatten(),
                          nn.Linear(2 * 24 * 24, 10)).train()
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    erf = effective_receptive_field(model, "3", images, position=(5, 7))
    singles = torch.stack([effective_receptive_field(model, "3", images[i:i + 1], position=(5, 7))
                           for i in range(4)])
    assert torch.allclose(erf, singles.mean(0)) and not torch.allclose(singles[0], singles[1])
    # uint8 images are normalised first: the same field as for normalised floats, with or without channel axis
    x = normalize(images)
    assert torch.equal(erf, effective_receptive_field(model, "3", x, position=(5, 7)))
    assert torch.equal(erf, effective_receptive_field(model, "3", x[:, 0], position=(5, 7)))
    with torch.no_grad():  # the gradient is taken all the same
        assert torch.equal(erf, effective_receptive_field(model, "3", images, position=(5, 7)))
    # the images follow the model's dtype
    erf64 = effective_receptive_field(copy.deepcopy(model).double(), "3", x, position=(5, 7))
    assert erf64.dtype == torch.float64 and torch.allclose(erf64, erf.double(), atol=1e-6)
    # a layer without a spatial map: the unit is the sum of all its outputs, which see every pixel
    assert effective_receptive_field(model, "5", images).ne(0).all()
    assert model.training


def test_effective_field_of_a_registry_model_on_normalised_input():
    model = get_model("final")
    table = receptive_field_table(model)
    last_conv = [r for r in table if r.type == "Conv2d" and r.out_size[0] >= 3][-1]
    erf = effective_receptive_field(model, last_conv.name, torch.randn(3, 1, 28, 28), position=(1, 2))
    box = last_conv.field_box(1, 2)
    t, l, b, r = _nonzero_box(erf)
    assert box[0] <= t and box[1] <= l and b <= box[2] and r <= box[3]
