"""Where MNIST comes from, the two error messages, normalisation, both pipelines, augmentation."""

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torchvision import datasets

from mnist_course import data, mnist_files
from mnist_course.augment import Augment, random_affine, rotation_grid
from mnist_course.errors import CourseError

RAW_NAMES = list(mnist_files.FILES)


def real_raw() -> Path:
    return mnist_files.ensure_mnist() / "MNIST" / "raw"


def copy_raw(dest: Path) -> Path:
    raw = dest / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_NAMES:
        (raw / name).symlink_to(real_raw() / name)
    return raw


def test_root_resolution_order(monkeypatch, tmp_path):
    copy_raw(tmp_path / "repo")
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "env"))
    with pytest.raises(CourseError, match=re.escape(f"{tmp_path / 'explicit'} is missing")):
        mnist_files.ensure_mnist(tmp_path / "explicit")
    with pytest.raises(CourseError, match=re.escape(f"{tmp_path / 'env'} (from $MNIST_DATA) is missing")):
        mnist_files.ensure_mnist()
    monkeypatch.delenv("MNIST_DATA")
    assert mnist_files.REPO_DATA == Path(mnist_files.__file__).resolve().parent.parent / "data"
    monkeypatch.setattr(mnist_files, "REPO_DATA", tmp_path / "repo")
    assert mnist_files.ensure_mnist() == tmp_path / "repo"


def test_missing_files_and_failed_download_give_one_clear_error(monkeypatch, tmp_path):
    # A real download attempt against a closed local port: fails the same way with or without internet.
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(CourseError) as err:
        mnist_files.ensure_mnist(tmp_path)
    message = str(err.value)
    for name in RAW_NAMES:
        assert name in message
    assert str(tmp_path / "MNIST" / "raw") in message and "MNIST_DATA" in message
    assert "\n" not in message
    assert not any(p.is_file() for p in tmp_path.rglob("*")), "a failed download left files behind"


@pytest.mark.parametrize("damage", ["truncate", "magic"])
def test_corrupt_file_is_named(tmp_path, damage):
    raw = copy_raw(tmp_path)
    victim = raw / "t10k-labels-idx1-ubyte"
    content = (real_raw() / victim.name).read_bytes()
    victim.unlink()
    victim.write_bytes(content[:5000] if damage == "truncate" else b"\x00\x00\x08\x03" + content[4:])
    with pytest.raises(CourseError, match="t10k-labels-idx1-ubyte"):
        data.get_data(root=tmp_path)


def test_normalisation_constants_come_from_the_training_images():
    images, _ = mnist_files.load_mnist(train=True)
    mean, std = data.compute_mean_std(images)
    assert (round(mean, 4), round(std, 4)) == (data.MNIST_MEAN, data.MNIST_STD) == (0.1307, 0.3081)


def test_load_mnist_shapes_and_types():
    images, labels = mnist_files.load_mnist(train=False)
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (10_000,) and set(labels.unique().tolist()) == set(range(10))


@pytest.mark.parametrize("train", [True, False])
def test_both_pipelines_give_identical_tensors(train):
    device = data.get_data(pipeline="device", train_size=600, test_size=600, device="cpu")
    loader = data.get_data(pipeline="loader", train_size=600, test_size=600, device="cpu")
    if train:  # training batches are shuffled differently; compare the same images unshuffled
        a = data.DeviceLoader(device.train.images, device.train.labels, 600, shuffle=False)
        xa, ya = next(iter(a))
        xb = torch.stack([loader.train.dataset[i][0] for i in range(600)])
        yb = torch.tensor([loader.train.dataset[i][1] for i in range(600)])
    else:
        (xa, ya), (xb, yb) = next(iter(device.test)), next(iter(loader.test))
    assert xa.shape == xb.shape == (600, 1, 28, 28)
    assert torch.equal(ya, yb)
    assert torch.equal(xa, xb)


def test_subsets_are_fixed_by_the_seed():
    a = data.get_data(train_size=500, test_size=100, seed=3, device="cpu")
    b = data.get_data(train_size=500, test_size=100, seed=3, device="cpu")
    c = data.get_data(train_size=500, test_size=100, seed=4, device="cpu")
    assert a.train_images == 500 and a.test_images == 100 and len(a.train) == 4
    assert torch.equal(a.train.labels, b.train.labels) and torch.equal(a.train.images, b.train.images)
    assert not torch.equal(a.train.images, c.train.images)


def test_device_pipeline_reshuffles_every_epoch_reproducibly():
    first = [y for _, y in data.get_data(train_size=256, batch_size=256, seed=1, device="cpu").train]
    loader = data.get_data(train_size=256, batch_size=256, seed=1, device="cpu").train
    epoch1, epoch2 = next(iter(loader))[1], next(iter(loader))[1]
    assert torch.equal(epoch1, first[0])
    assert not torch.equal(epoch1, epoch2)
    assert torch.equal(epoch1.sort().values, epoch2.sort().values)


def test_augmentation_keeps_shape_and_range_and_changes_the_image():
    images, _ = mnist_files.load_mnist(train=False)
    x = images[:64].unsqueeze(1).float() / 255
    out = random_affine(x, Augment(degrees=15, translate=0.1), torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
    changed = (out - x).abs().flatten(1).amax(1) > 0.1
    assert changed.all(), "every image should move"
    again = random_affine(x, Augment(degrees=15, translate=0.1), torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    identity = random_affine(x, Augment(degrees=0, translate=0), torch.Generator().manual_seed(0))
    assert torch.allclose(identity, x, atol=1e-5)


def test_rotation_and_shift_alone_draw_what_they_always_drew():
    x = mnist_files.load_mnist(train=False)[0][:16].unsqueeze(1).float() / 255
    rand = torch.rand(16, 3, generator=torch.Generator().manual_seed(3)) * 2 - 1
    grid = rotation_grid(rand[:, 0] * math.radians(15), rand[:, 1:] * 2 * 0.1, 28, 28)
    before = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    assert torch.equal(random_affine(x, Augment(15, 0.1), torch.Generator().manual_seed(3)), before)


def test_zoom_and_jitter_change_size_brightness_and_contrast_within_range():
    x = mnist_files.load_mnist(train=False)[0][:256].unsqueeze(1).float() / 255
    zoomed = random_affine(x, Augment(0, 0, scale=0.09), torch.Generator().manual_seed(0))
    ink = zoomed.sum((1, 2, 3)) / x.sum((1, 2, 3))  # ink grows with the area: (1 ± 0.09)² at most
    assert 0.8 < ink.min() < 0.9 and 1.1 < ink.max() < 1.2
    jittered = random_affine(x, Augment(0, 0, jitter=0.2), torch.Generator().manual_seed(0))
    assert jittered.min() >= 0 and jittered.max() <= 1
    peak = jittered.flatten(1).amax(1)
    assert peak.min() < 0.9 and x.flatten(1).amax(1).min() > 0.99, "brightness lowers some digits' ink"
    loader_chain = str(data.classic_transforms(Augment(7, 0.09, scale=0.09, jitter=0.2)))
    assert "scale=(0.91, 1.09)" in loader_chain and "ColorJitter" in loader_chain


def test_augmentation_only_touches_the_training_split():
    plain = data.get_data(train_size=128, test_size=128, batch_size=128, device="cpu")
    aug = data.get_data(train_size=128, test_size=128, batch_size=128, device="cpu", augment=Augment(10, 0.1))
    assert torch.equal(next(iter(plain.test))[0], next(iter(aug.test))[0])
    assert not torch.equal(next(iter(plain.train))[0], next(iter(aug.train))[0])


def test_quick_mode_caps_nothing(monkeypatch):
    monkeypatch.setenv("MNIST_COURSE_SMOKE", "1")
    d = data.get_data(device="cpu")
    assert (d.train_images, d.test_images) == (60_000, 10_000)  # sizes are the caller's choice


def test_model_input_is_normalised_once():
    raw = mnist_files.load_mnist(train=False)[0][:3]
    x = data.to_model_input(raw)
    assert x.shape == (3, 1, 28, 28) and torch.equal(x, data.normalize(raw))
    assert torch.equal(data.to_model_input(x), x)  # float images are taken as normalised already
    assert data.to_model_input(raw[0]).shape == (1, 1, 28, 28)


def test_unknown_device_and_pipeline_are_clear():
    with pytest.raises(CourseError, match="unknown device 'gpu'"):
        data.pick_device("gpu")
    with pytest.raises(ValueError, match="pipeline"):
        data.get_data(pipeline="fast")
    assert data.pick_device("cpu") == torch.device("cpu")


def test_repo_data_folder_is_not_committed():
    root = Path(mnist_files.__file__).resolve().parent.parent
    gitignore = (root / ".gitignore").read_text().split()
    assert "/data/" in gitignore


def test_rotation_grid_is_affine_grid_for_a_rotation_and_shift():
    angle, shift = torch.rand(50) - 0.5, torch.rand(50, 2) * 0.4 - 0.2
    cos, sin = angle.cos(), angle.sin()
    rows = [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)]
    theta = torch.stack(rows, 1)
    for h, w in ((28, 28), (20, 28)):
        expected = F.affine_grid(theta, [50, 1, h, w], align_corners=False)
        assert torch.allclose(rotation_grid(angle, shift, h, w), expected, atol=1e-6)


def test_the_validation_split_is_fixed_disjoint_and_never_seen_in_training():
    train_idx, val_idx = data.split_indices(5_000)
    assert len(val_idx) == 5_000 and len(train_idx) == 55_000
    assert not set(val_idx.tolist()) & set(train_idx.tolist())
    assert torch.equal(data.split_indices(5_000)[1], val_idx)  # the same images in every run, any seed
    a = data.get_data(val_size=5_000, train_size=300, seed=1, device="cpu", test=False)
    b = data.get_data(val_size=5_000, train_size=300, seed=2, device="cpu", test=False)
    assert a.test is None and a.test_images == 0 and a.val_images == 5_000
    assert torch.equal(a.val.images, b.val.images)  # same validation images for another seed
    images, _ = data.load_split("val")
    assert torch.equal(images, a.val.images)
    train_images = data.load_split("train")[0].flatten(1)
    rows = {row.numpy().tobytes() for row in train_images}
    assert all(row.numpy().tobytes() in rows for row in a.train.images.flatten(1))


def test_train_eval_is_a_fixed_unaugmented_subset_of_the_training_images():
    d = data.get_data(train_size=7_000, device="cpu", augment=Augment(10, 0.1))
    assert len(d.train_eval.labels) == data.TRAIN_EVAL_SIZE and d.train_eval.augment is None
    assert not d.train_eval.shuffle
    train_rows = {row.numpy().tobytes() for row in d.train.images.flatten(1)}
    assert all(row.numpy().tobytes() in train_rows for row in d.train_eval.images.flatten(1))


def test_bad_split_arguments_name_themselves():
    with pytest.raises(ValueError, match="val_size"):
        data.split_indices(60_000)
    with pytest.raises(ValueError, match="split"):
        data.load_split("validation")
