"""Train a model with its recipe, and reproduce claims over seeds (``python -m mnist_course reproduce``): each
finished run is saved in ``runs/`` (quick mode: ``runs/quick/``), the claim table only when all finished."""

import dataclasses
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

from torch import nn

from .augment import Augment
from .cuda_graph import GraphedStep
from .data import get_data
from .errors import CourseError
from .history import History
from .mnist_files import FILES
from .paths import check_writable, write_atomically
from .quick import QUICK_EPOCHS, QUICK_NOTE, QUICK_TEST_SIZE, QUICK_TRAIN_SIZE
from .recipes import Recipe, make_optimizer, make_scheduler
from .registry import CLAIMS, RECIPES, get_model
from .report import TARGET
from .train import fit, seed_everything, train_step


def run_recipe(name: str, recipe: Recipe, seed: int = 1, *, device: str = "auto", root: str | Path | None = None,
               quick: bool = False, progress: str = "bar", callbacks: Sequence[Callable] = (),
               build: Callable[[], nn.Module] | None = None, cuda_graph: bool = True, val_size: int = 0) -> History:
    """Build model ``name`` (or ``build()``), train it as ``recipe`` says (``quick``: 1 epoch on a subset), each
    step a CUDA graph on a GPU unless ``cuda_graph=False``. ``val_size``: images held out, then no test set."""
    recipe = dataclasses.replace(recipe, epochs=QUICK_EPOCHS) if quick else recipe
    seed_everything(seed)
    model = build() if build is not None else get_model(name)
    shape = (recipe.degrees, recipe.translate, recipe.scale, recipe.jitter)
    augment = Augment(*shape) if any(shape) else None
    sizes = {"train_size": QUICK_TRAIN_SIZE, "test_size": QUICK_TEST_SIZE} if quick else {}
    data = get_data(batch_size=recipe.batch_size, augment=augment, device=device, seed=seed, root=root,
                    val_size=val_size, test=not val_size, **sizes)
    optimizer = make_optimizer(model, recipe)
    scheduler = make_scheduler(optimizer, recipe, len(data.train))
    seed_everything(seed)  # training's own draws (dropout) start from the seed, whatever the model drew
    model.to(data.device)
    step = GraphedStep(model, recipe.batch_size) if cuda_graph and data.device.type == "cuda" else train_step
    history = fit(model, data, recipe.epochs, optimizer, scheduler, step=step, callbacks=callbacks,
                  progress=progress, name=name)
    history.meta.update(seed=seed, quick=quick, recipe=dataclasses.asdict(recipe),
                        **({"note": QUICK_NOTE} if quick else {}))
    return history


def reproduce(names: list[str], seeds: int, out: Path, *, device: str = "auto", root: str | Path | None = None,
              quick: bool = False, resume: bool = False, cuda_graph: bool = True, progress: str = "off") -> str:
    """Train every model in ``names`` for seeds 1..``seeds``, then write ``out`` (Markdown); returns its text.
    Ctrl-C raises ``KeyboardInterrupt`` saying which finished runs were kept; no table is written then."""
    for name in names:
        get_model(name)  # a bad name fails now, before any training
    check_writable(out, "--out")
    runs_dir = check_writable("runs/quick" if quick else "runs", "runs folder", folder=True)
    runs: dict[str, list[History]] = {name: [] for name in names}
    try:
        for name in names:
            recipe = dataclasses.replace(RECIPES[name], epochs=QUICK_EPOCHS) if quick else RECIPES[name]
            for seed in range(1, seeds + 1):
                path = runs_dir / f"{name}-seed{seed}.json"
                history = (resume and reusable(path, name, recipe, seed, quick)) or one_run(
                    name, recipe, seed, path, device=device, root=root, quick=quick, progress=progress,
                    cuda_graph=cuda_graph)
                runs[name].append(history)
    except KeyboardInterrupt:
        kept = sum(map(len, runs.values()))
        raise KeyboardInterrupt(f"kept the {kept} finished run(s) in {runs_dir}/ (go on with --resume); "
                                "no table written") from None
    text = reproduction_report(runs, seeds, quick, resume)
    write_atomically(out, text)
    return text


def reusable(path: Path, name: str, recipe: Recipe, seed: int, quick: bool) -> History | None:
    """The run saved at ``path`` if it finished with this model, seed, recipe (as run), data and mode; else None."""
    if not path.is_file():
        return None
    try:
        h = History.load(path)
    except CourseError as exc:
        print(f"   not reused: {exc}")
        return None
    expected = json.loads(json.dumps({  # as JSON stores it: tuples become lists
        "recipe": dataclasses.asdict(recipe), "quick": quick, "seed": seed, "epochs": recipe.epochs,
        "train_images": QUICK_TRAIN_SIZE if quick else FILES["train-labels-idx1-ubyte"][1],
        "test_images": QUICK_TEST_SIZE if quick else FILES["t10k-labels-idx1-ubyte"][1]}))
    differs = [key for key, value in expected.items() if h.meta.get(key) != value]
    if h.name != name or "parameters" not in h.meta:
        differs.append("model")
    if not h.finished or differs:
        print(f"   not reused: {path} " + ("did not finish" if not h.finished else f"differs in {', '.join(differs)}"))
        return None
    print(f"== {name}, seed {seed}: reused {path}")
    return h


def one_run(name: str, recipe: Recipe, seed: int, path: Path, *, quick: bool, **options: object) -> History:
    """Train one run and save it at ``path``; an interrupted run is not saved (``KeyboardInterrupt``)."""
    print(f"== {name}, seed {seed}: {recipe.epochs} epoch(s)" + (" (quick mode)" if quick else ""), flush=True)
    history = run_recipe(name, recipe, seed, quick=quick, **options)
    if history.interrupted:
        raise KeyboardInterrupt
    history.save(path)
    print(f"   saved {path}: best {history.best_test_acc:.2f}%, last {history.test_acc[-1]:.2f}%", flush=True)
    return history


def spread(values: list[float]) -> str:
    """``mean ± std (min–max)`` of accuracies."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {std:.2f} ({min(values):.2f}–{max(values):.2f})"


CLAIM_TABLE = ("| model | params | epochs | seeds | published claim | best-epoch test acc % mean ± std (min–max) "
               "| last-epoch test acc % | min of last 3 epochs % | first epoch ≥ 99.4 % (per seed) |")
SEED_TABLE = "| seed | best test acc % (epoch) | last 3 epochs % | min of last 3 % | first epoch ≥ 99.4 % |"


def reproduction_report(runs: dict[str, list[History]], seeds: int, quick: bool, resume: bool) -> str:
    """The Markdown ``reproduce`` writes: command, where it ran, the claim table, a table per model (a row per
    seed). Accuracies are test accuracies: best, last, the last three; and the first epoch ≥ 99.4 %."""
    histories = [h for hs in runs.values() for h in hs]
    hours = sum(sum(h.seconds) for h in histories) / 3600
    graphs = "; each training step replayed as a CUDA graph" if any(h.meta.get("cuda_graph") for h in histories) else ""
    command = (f"python -m mnist_course reproduce --models {' '.join(runs)} --seeds {seeds}"
               f"{' --quick' if quick else ''}{' --resume' if resume else ''}")
    claims, per_seed = [CLAIM_TABLE, "|---" * 9 + "|"], []
    for name, hs in runs.items():
        firsts = ", ".join(str(h.first_epoch_reaching(TARGET) or "never") for h in hs)
        claims.append(f"| {name} | {hs[0].meta['parameters']:,} | {hs[0].epochs} | {len(hs)} | {CLAIMS.get(name, '—')} "
                      f"| {spread([h.best_test_acc for h in hs])} | {spread([h.test_acc[-1] for h in hs])} "
                      f"| {spread([min(h.test_acc[-3:]) for h in hs])} | {firsts} |")
        rows = [f"| {h.meta['seed']} | {h.best_test_acc:.2f} ({h.best_epoch}) | "
                f"{', '.join(f'{a:.2f}' for a in h.test_acc[-3:])} | {min(h.test_acc[-3:]):.2f} "
                f"| {h.first_epoch_reaching(TARGET) or 'never'} |" for h in hs]
        per_seed.append("\n".join([f"## {name}: per seed\n", SEED_TABLE, "|---" * 5 + "|", *rows]))
    return "\n\n".join([
        f"# Reproductions: {', '.join(runs)}" + (" (quick mode)" if quick else ""),
        *([f"**{QUICK_NOTE.capitalize()}.**"] if quick else []),
        (f"Command: `{command}`  \n{histories[0].meta.get('environment', '')}  \n"
         f"training time summed over all runs: {hours:.2f} h{graphs}"),
        "Accuracies are on the 10,000 MNIST test images after each epoch, as the published documents report them.",
        "\n".join(claims),
        *per_seed,
    ]) + "\n"
