"""Run a model's recipe, and reproduce published claims over several seeds.

``run_recipe`` is what ``python -m mnist_course train`` does; ``reproduce`` trains each model over N
seeds and writes a Markdown table of published claim versus measured numbers.
"""

import statistics
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from .augment import Augment
from .data import get_data
from .environment import environment_line  # noqa: F401  (the notebooks import it from here)
from .history import History, write_text_atomically
from .models import get_model
from .recipes import RECIPES, Recipe, make_optimizer, make_scheduler
from .summary import count_parameters
from .train import fit

TARGET = 99.4

# What each source document claims, in its own words (see ../shared/seeds/ and the models' docstrings).
CLAIMS = {
    "ref001": "> 99.4 % in < 15 epochs (no log published)",
    "ref002": "99.44 % (best epoch, < 20 epochs; no log published)",
    "ref003": "99.51 % best (epochs 16–17), 99.49 % at epoch 19; text says 99.58 %",
    "ref004": "99.27 % at epoch 12 (analysis text); results list 97.63 % at epoch 15",
    "final": "≥ 99.4 % in each of the last 3 of 15 epochs, every seed",
}


def recipe_for(name: str, **overrides) -> Recipe:
    """The model's recipe with any non-None overrides (epochs, batch_size, …) applied."""
    get_model(name)  # a clear UnknownModelError before anything else
    return replace(RECIPES[name], **{k: v for k, v in overrides.items() if v is not None})


def run_recipe(name: str, recipe: Recipe, seed: int = 1, device: str = "auto", progress: bool = True,
               verbose: bool = True, root: str | Path | None = None, train_size: int | None = None,
               test_size: int | None = None, checkpoint: str | Path | None = None,
               build: Callable[[], nn.Module] | None = None, cuda_graph: bool = True) -> History:
    """Build model ``name`` (or call ``build`` for a model outside the registry) and train it as
    ``recipe`` says (data, augmentation, optimizer, schedule). On a CUDA device each step is replayed
    as a CUDA graph unless ``cuda_graph=False``."""
    torch.manual_seed(seed)
    model = build() if build is not None else get_model(name)
    augment = Augment(recipe.degrees, recipe.translate) if recipe.degrees or recipe.translate else None
    data = get_data(batch_size=recipe.batch_size, augment=augment, device=device, seed=seed, root=root,
                    train_size=train_size, test_size=test_size)
    optimizer = make_optimizer(model, recipe)
    scheduler = make_scheduler(optimizer, recipe, len(data.train))
    history = fit(model, data, recipe.epochs, optimizer, scheduler, seed=seed, progress=progress,
                  verbose=verbose, checkpoint=checkpoint, name=name, cuda_graph=cuda_graph)
    history.meta["recipe"] = asdict(recipe)
    return history


def _stats(values: list[float]) -> str:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {std:.2f} ({min(values):.2f}–{max(values):.2f})"


def reproduction_table(runs: dict[str, list[History]]) -> str:
    """Markdown: per model, the published claim next to best/last/last-3 accuracy over seeds."""
    lines = [("| model | params | epochs | seeds | published claim | best-epoch test acc % mean ± std (min–max) "
              "| last-epoch test acc % | min of last 3 epochs % | first epoch ≥ 99.4 % (per seed) |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for name, histories in runs.items():
        h0 = histories[0]
        firsts = ", ".join(str(h.first_epoch_reaching(TARGET) or "never") for h in histories)
        lines.append(
            f"| {name} | {h0.meta['parameters']:,} | {h0.epochs} | {len(histories)} | {CLAIMS.get(name, '—')} "
            f"| {_stats([h.best_test_acc for h in histories])} | {_stats([h.test_acc[-1] for h in histories])} "
            f"| {_stats([min(h.test_acc[-3:]) for h in histories])} | {firsts} |")
    return "\n".join(lines)


def per_seed_table(histories: list[History]) -> str:
    """Markdown: one row per seed with best, min of last three and first epoch reaching 99.4 %."""
    lines = ["| seed | best test acc % (epoch) | last 3 epochs % | min of last 3 % | first epoch ≥ 99.4 % |",
             "|---|---|---|---|---|"]
    for h in histories:
        last3 = ", ".join(f"{a:.2f}" for a in h.test_acc[-3:])
        lines.append(f"| {h.meta['seed']} | {h.best_test_acc:.2f} ({h.best_epoch}) | {last3} "
                     f"| {min(h.test_acc[-3:]):.2f} | {h.first_epoch_reaching(TARGET) or 'never'} |")
    return "\n".join(lines)


def reproduce(names: list[str], seeds: int, out: Path, device: str = "auto", progress: bool = False,
              root: str | Path | None = None, runs_dir: Path = Path("runs"), resume: bool = False,
              cuda_graph: bool = True) -> str:
    """Train every model in ``names`` with its recipe for seeds 1..N and write ``out`` (Markdown).

    Each finished run is saved as ``runs_dir/<model>-seed<N>.json`` and the table is rewritten after every
    model, so an interrupted reproduction keeps what it finished. With ``resume``, a saved run whose
    recipe matches the current one is read back instead of trained again.
    """
    recipes = {name: recipe_for(name) for name in names}  # fail on a bad name before any training
    runs: dict[str, list[History]] = {}
    for name, recipe in recipes.items():
        for seed in range(1, seeds + 1):
            path = runs_dir / f"{name}-seed{seed}.json"
            if resume and path.exists() and History.load(path).meta.get("recipe") == asdict(recipe):
                print(f"== {name}, seed {seed}: read back from {path}")
                runs.setdefault(name, []).append(History.load(path))
                continue
            print(f"== {name}, seed {seed}: {count_parameters(get_model(name)):,} parameters, {recipe.epochs} epochs")
            history = run_recipe(name, recipe, seed, device, progress=progress, root=root, cuda_graph=cuda_graph)
            history.save(path)
            runs.setdefault(name, []).append(history)
        text = reproduction_report(runs, names, seeds, resume)
        write_text_atomically(out, text)
    return text


def recorded_environment(meta: dict) -> str:
    """Where a saved run was trained, as it recorded it (it may come from another machine)."""
    return meta.get("environment") or f"device: {meta['device']}, torch {meta['torch']} (no more recorded)"


def reproduction_report(runs: dict[str, list[History]], names: list[str], seeds: int, resume: bool) -> str:
    """The Markdown file ``reproduce`` writes: command, where it ran, the claim table, per-seed tables."""
    histories = [h for hs in runs.values() for h in hs]
    devices = sorted({h.meta["device"] for h in histories})
    hours = sum(sum(h.seconds) for h in histories) / 3600
    graphs = "; each training step replayed as a CUDA graph" if any(h.meta.get("cuda_graph") for h in histories) else ""
    done = "" if list(runs) == names else f" (finished so far: {', '.join(runs)})"
    return "\n\n".join([
        f"# Reproductions: {', '.join(names)}{done}",
        (f"Command: `python -m mnist_course reproduce --models {' '.join(names)} --seeds {seeds}"
        f"{' --resume' if resume else ''}`  \n{recorded_environment(histories[0].meta)}  \n"
        f"devices used: {', '.join(devices)}; training time summed over all runs: {hours:.2f} h{graphs}"),
        ("Accuracies are on the 10,000 MNIST test images after each epoch, as the published documents "
         "report them (the test set doubles as validation set there; so it does here, for comparison)."),
        reproduction_table(runs),
        *[f"## {name}: per seed\n\n{per_seed_table(hs)}" for name, hs in runs.items()],
    ]) + "\n"
