"""``python -m mnist_course``: train a model, list the models, print a summary, reproduce claims.

Every mistake we can explain (unknown model, bad number, missing or corrupt data, a model over budget)
ends in one line ``error: …`` on stderr and exit status 2, never a traceback.
"""

import argparse
import sys
from pathlib import Path

from .errors import CourseError
from .experiment import recipe_for, reproduce, run_recipe
from .models import get_model, model_names
from .receptive_field import receptive_field_table
from .summary import count_parameters, summary_text


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> None:
        self.exit(2, f"error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m mnist_course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    train = sub.add_parser("train", help="train a model with its recipe (default: the course's final model)")
    train.add_argument("--model", default="final", help="model name (see `models`); default: final")
    train.add_argument("--epochs", type=positive_int, help="epochs (default: the model's recipe)")
    train.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    train.add_argument("--batch-size", type=positive_int, help="batch size (default: the model's recipe)")
    train.add_argument("--lr", type=float, help="learning rate (default: the model's recipe)")
    train.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    train.add_argument("--data", metavar="DIR", help="folder holding MNIST/raw (default: $MNIST_DATA or data/)")
    train.add_argument("--progress", choices=["on", "off"], default="on", help="show the progress bar")
    train.add_argument("--checkpoint", metavar="PATH", help="save the best-by-test-accuracy state_dict here")
    train.add_argument("--history", metavar="PATH", help="save the History as JSON here")
    train.add_argument("--dry-run", action="store_true", help="1 epoch on 2,000/1,000 images: a quick check")
    train.add_argument("--cuda-graph", choices=["on", "off"], default="on",
                       help="on a CUDA GPU, replay each step as a CUDA graph (default: on)")

    sub.add_parser("models", help="list the models with parameter count and final receptive field")

    summary = sub.add_parser("summary", help="print a model's torchsummary table")
    summary.add_argument("--model", default="final", help="model name (default: final)")

    rep = sub.add_parser("reproduce", help="train models over seeds and write a claim-vs-measured table")
    rep.add_argument("--models", nargs="+", default=["ref001", "ref002", "ref003", "ref004"], metavar="NAME")
    rep.add_argument("--seeds", type=positive_int, default=1, help="seeds 1..N (default: 1)")
    rep.add_argument("--device", default="auto")
    rep.add_argument("--data", metavar="DIR")
    rep.add_argument("--progress", choices=["on", "off"], default="off")
    rep.add_argument("--resume", action="store_true", help="reuse finished runs saved in runs/ (same recipe)")
    rep.add_argument("--cuda-graph", choices=["on", "off"], default="on",
                     help="on a CUDA GPU, replay each step as a CUDA graph (default: on)")
    rep.add_argument("--out", metavar="PATH", help="Markdown file (default: results/reproductions.md, "
                     "or results/final_model.md for --models final)")
    return parser


def cmd_train(args: argparse.Namespace) -> None:
    recipe = recipe_for(args.model, epochs=1 if args.dry_run else args.epochs,
                        batch_size=args.batch_size, lr=args.lr)
    print(summary_text(get_model(args.model)), end="")
    sizes = {"train_size": 2_000, "test_size": 1_000} if args.dry_run else {}
    history = run_recipe(args.model, recipe, args.seed, args.device, progress=args.progress == "on",
                         root=args.data, checkpoint=args.checkpoint, cuda_graph=args.cuda_graph == "on", **sizes)
    if args.history:
        history.save(args.history)
    if history.epochs == 0:
        raise CourseError("interrupted before the first epoch finished; nothing to report")
    print(f"{args.model}: {history.meta['parameters']:,} parameters, best test accuracy "
          f"{history.best_test_acc:.2f}% (epoch {history.best_epoch}), last epoch "
          f"{history.test_acc[-1]:.2f}% ({history.epochs} epochs, {sum(history.seconds):.0f} s on "
          f"{history.meta['device']})")


def cmd_models(args: argparse.Namespace) -> None:
    print(f"{'model':<10} {'parameters':>10} {'final RF':>9}  description")
    for name in model_names():
        model = get_model(name)
        doc = (type(model).__doc__ or "").strip().splitlines()[0]
        rf = receptive_field_table(model).final_rf
        print(f"{name:<10} {count_parameters(model):>10,} {rf:>9}  {doc}")


def cmd_reproduce(args: argparse.Namespace) -> None:
    default = "results/final_model.md" if args.models == ["final"] else "results/reproductions.md"
    reproduce(args.models, args.seeds, Path(args.out or default), args.device,
              progress=args.progress == "on", root=args.data, resume=args.resume,
              cuda_graph=args.cuda_graph == "on")
    print(f"wrote {args.out or default}")


COMMANDS = {"train": cmd_train, "models": cmd_models, "reproduce": cmd_reproduce,
            "summary": lambda args: print(summary_text(get_model(args.model)), end="")}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        COMMANDS[args.command](args)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
