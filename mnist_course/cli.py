"""``python -m mnist_course``: train, list and summarise models, reproduce claims, grade a learner's model.

A mistake we can explain is one line ``error: …`` on stderr (exit status 2), before any training starts;
Ctrl-C stops the command, says what was kept, and exits with status 130."""

import argparse
import dataclasses
import math
import os
import sys
from pathlib import Path

import torch

from .checks import design_check, load_learner, run_check
from .data import mps_available, pick_device
from .errors import CourseError
from .mnist_files import ensure_mnist
from .paths import check_writable
from .quick import QUICK_NOTE, quick_mode
from .receptive_field import receptive_field_table
from .registry import DESCRIPTIONS, RECIPES, get_model, model_names
from .reproduce import reproduce, run_recipe
from .summary import count_parameters, summary_text
from .train import BestCheckpoint

DEVICES = ["auto", "cpu"] + ["cuda"] * torch.cuda.is_available() + ["mps"] * mps_available()
REPO_RESULTS = Path(__file__).resolve().parent.parent / "results"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> None:
        self.exit(2, f"error: {message} (see --help)\n")


def number(kind: type, low: float, high: float):
    """argparse type: a finite ``kind`` (int or float) from ``low`` (excluded for a float) to ``high``."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {'whole ' * (kind is int)}number: {text!r}") from None
        if not (math.isfinite(value) and (low <= value if kind is int else low < value) and value <= high):
            bound = "at least" if kind is int else "above"
            raise argparse.ArgumentTypeError(f"must be {bound} {low:,} and at most {high:,}, got {text}")
        return value
    return parse


def device_name(text: str) -> str:
    """argparse type: a device this machine has (``--help`` lists only those)."""
    if text not in DEVICES:
        raise argparse.ArgumentTypeError(f"no device {text!r} on this machine; use {', '.join(DEVICES)}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m mnist_course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    recipe = "(default: the model's recipe)"
    train = sub.add_parser("train", help="train a model with its recipe (default: the course's final model)")
    train.add_argument("--model", default="final", help="model name (see `models`); default: final")
    train.add_argument("--epochs", type=number(int, 1, 1000), help=f"epochs {recipe}")
    train.add_argument("--seed", type=number(int, 0, 2**31 - 1), default=1,
                       help="random seed, 0 or more (default: 1)")
    train.add_argument("--batch-size", type=number(int, 1, 60_000), help=f"batch size {recipe}")
    train.add_argument("--lr", type=number(float, 0, 10), help=f"learning rate {recipe}")
    train.add_argument("--checkpoint", metavar="PATH", help="save the last epoch's state_dict here")
    train.add_argument("--history", metavar="PATH", help="save the History as JSON here")
    train.add_argument("--dry-run", "--quick", action="store_true", dest="quick",
                       help="quick mode: 1 epoch on 2,000/1,000 images, a check that everything runs")
    rep = sub.add_parser("reproduce", help="train models over seeds and write a claim-vs-measured table")
    rep.add_argument("--models", nargs="+", default=["ref001", "ref002", "ref003", "ref004"], metavar="NAME")
    rep.add_argument("--seeds", type=number(int, 1, 100), default=1, help="seeds 1..N (default: 1)")
    rep.add_argument("--resume", action="store_true",
                     help="reuse runs saved in runs/ that finished with the same recipe, data and mode")
    rep.add_argument("--out", metavar="PATH", help="Markdown file (default: results/reproductions.md; for "
                     "one model results/NAME.md, final: final_model.md; runs/quick/… in quick mode)")
    rep.add_argument("--quick", action="store_true", help="quick mode: 1 epoch on 2,000/1,000 images")
    grade = "grade a model file (RUNS ITS CODE: trusted files only); exit 0 pass, 1 a rule fails, 2 bad input"
    check = sub.add_parser("check", help=grade, description=grade)
    check.add_argument("model", metavar="PATH[:CLASS]", help="a .py file; CLASS when it defines several")
    goals = [("--max-params", 1, 10**9, 20_000), ("--epochs", 1, 19, RECIPES["final"].epochs),
             ("--target", 0, 100, 99.4), ("--last", 1, 19, 3), ("--seeds", 1, 100, 1)]
    for option, low, high, default in goals:
        check.add_argument(option, type=number(type(default), low, high), default=default,
                           help=f"default: {default:,}")
    check.add_argument("--design-only", action="store_true", help="check the design only; train nothing")
    check.add_argument("--quick", action="store_true", help="1 epoch on 2,000 images; the run is not judged")
    for command in (train, rep, check):
        command.add_argument("--device", default="auto", type=device_name, metavar=f"{{{','.join(DEVICES)}}}",
                             help="default: auto (the fastest here)")
        command.add_argument("--data", metavar="DIR",
                             help="folder holding MNIST/raw (default: $MNIST_DATA or data/)")
        command.add_argument("--progress", choices=["bar", "lines", "off"],
                             default="off" if command is rep else "bar")
        graph = "off" if command is check else "on"
        command.add_argument("--cuda-graph", choices=["on", "off"], default=graph,
                             help=f"on a CUDA GPU, replay each step as a CUDA graph (default: {graph})")
    sub.add_parser("models", help="list the models with parameter count and final receptive field")
    summary = sub.add_parser("summary", help="print a model's torchsummary table")
    summary.add_argument("--model", default="final")
    return parser


def partial(path: Path) -> Path:
    """Where an unfinished run's file goes, so it never replaces a finished one: ``name.partial.ext``."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def check_outputs(paths: dict[str, str | Path | None], quick: bool) -> list[Path | None]:
    """Output paths (None if not given), checked: writable, distinct, and in quick mode not under results/."""
    checked = {what: check_writable(path, what) for what, path in paths.items() if path}
    real = {what: Path(os.path.realpath(path)) for what, path in checked.items()}
    if len(set(real.values())) < len(real):
        raise CourseError(f"{' and '.join(real)} name the same file; give each its own path")
    results = {Path(os.path.realpath(folder)) for folder in ("results", REPO_RESULTS)}
    for what, path in checked.items():
        if quick and results & set(real[what].parents):
            raise CourseError(f"{what} {path}: quick mode never writes to results/; choose another folder")
    return [checked.get(what) for what in paths]


def cmd_train(args: argparse.Namespace) -> int:
    model = get_model(args.model)  # an unknown name fails first
    quick = args.quick or quick_mode()
    checkpoint, json_path = check_outputs({"--checkpoint": args.checkpoint, "--history": args.history}, quick)
    pick_device(args.device)
    ensure_mnist(args.data)
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
    recipe = dataclasses.replace(RECIPES[args.model], **{k: v for k, v in overrides.items() if v is not None})
    print((QUICK_NOTE + "\n") * quick + summary_text(model), end="")
    callbacks = [BestCheckpoint(partial(checkpoint))] if checkpoint else []
    history = run_recipe(args.model, recipe, args.seed, device=args.device, root=args.data, quick=quick,
                         progress=args.progress, callbacks=callbacks, cuda_graph=args.cuda_graph == "on")
    if history.interrupted:  # finished epochs are kept only under *.partial.* names, never as a result
        kept = [history.save(partial(json_path))] if history.epochs and json_path else []
        if history.epochs and checkpoint and partial(checkpoint).exists():
            kept.append(partial(checkpoint))
        names = ", ".join(map(str, kept))
        done = f"kept {names} (partial; complete files untouched)" if kept else "nothing written"
        print(f"interrupted after {history.epochs} of {history.meta['epochs']} epoch(s): not a result;", done,
              file=sys.stderr)
        return 130
    if json_path:
        history.save(json_path)
        partial(json_path).unlink(missing_ok=True)  # an earlier interrupted run's, now superseded
    if checkpoint:
        partial(checkpoint).replace(checkpoint)  # an OSError here is one line too, from main()
    print(f"{args.model}: {history.meta['parameters']:,} parameters, "
          f"best test accuracy {history.best_test_acc:.2f}% (epoch {history.best_epoch}), "
          f"last epoch {history.test_acc[-1]:.2f}% ({history.epochs} epochs, "
          f"{sum(history.seconds):.0f} s on {history.meta['device']})" + (" [quick mode]" if quick else ""))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    quick = args.quick or quick_mode()
    one = args.models[0] if len(args.models) == 1 else None
    stem = "final_model" if one == "final" else one or "reproductions"
    out = Path(args.out or (f"runs/quick/{stem}.md" if quick else f"results/{stem}.md"))
    check_outputs({"--out": out}, quick)
    pick_device(args.device)
    ensure_mnist(args.data)
    reproduce(args.models, args.seeds, out, device=args.device, root=args.data, quick=quick,
              resume=args.resume, cuda_graph=args.cuda_graph == "on", progress=args.progress)
    print(f"wrote {out}" + (" (quick mode: not a result)" if quick else ""))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    print(f"{'model':<10} {'parameters':>10} {'final RF':>9}  description")
    for name in model_names():
        model = get_model(name)
        rf = receptive_field_table(model).final_rf
        print(f"{name:<10} {count_parameters(model):>10,} {rf:>9}  {DESCRIPTIONS[name]}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    print(summary_text(get_model(args.model)), end="")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    learner, model = load_learner(args.model)
    design = design_check(model, max_params=args.max_params)
    shape = next(rule for rule in design.rules if rule.name == "output shape")
    if not shape.passed:  # a model that cannot be trained: bad input, not a failed rule
        found = shape.measured if isinstance(shape.measured, str) else f"output {shape.measured}"
        raise CourseError(f"{args.model}: {found} for a (2, 1, 28, 28) batch, not (2, 10)")
    print(design, flush=True)
    if args.design_only or design.passed is False:  # a design that fails is not trained
        return 1 if design.passed is False else 0
    runs, recipe = [], dataclasses.replace(RECIPES["final"], epochs=args.epochs)
    for seed in range(1, args.seeds + 1):  # bad --data or no MNIST: an error before training
        runs.append(run_recipe(learner.__name__, recipe, seed, build=learner, device=args.device,
                               quick=args.quick or quick_mode(), root=args.data, progress=args.progress,
                               cuda_graph=args.cuda_graph == "on"))
        if runs[-1].interrupted:
            raise KeyboardInterrupt(f"stopped during seed {seed}: no verdict")
    run = run_check(runs, target=args.target, last=args.last)
    print(f"\n{run}\n")
    return 1 if run.passed is False else 0


COMMANDS = {name.removeprefix("cmd_"): command for name, command in globals().items() if name[:4] == "cmd_"}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except CourseError as exc:
        message = str(exc)
    except RuntimeError as exc:  # torch.OutOfMemoryError on a GPU; a RuntimeError from the CPU allocator
        if not isinstance(exc, torch.OutOfMemoryError) and "allocate memory" not in str(exc):
            raise
        message = f"out of memory on device {args.device}; free some memory, or try a smaller --batch-size"
    except OSError as exc:  # a file problem no check foresaw
        message = f"{exc.filename or 'a file'}: {exc.strerror or exc}"
    except KeyboardInterrupt as exc:
        print(f"interrupted: {exc or 'nothing was written'}", file=sys.stderr)
        return 130
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return 2
