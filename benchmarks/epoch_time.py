"""How long is one training epoch, and how much of it is the data path? Times one epoch of the same model
three ways, alternating, and reports medians: ``loader`` (torchvision's DataLoader), ``device`` (the course's
default pipeline) and ``compute`` (batches made beforehand: the floor). On a CUDA GPU all three replay each
step as a CUDA graph unless ``--cuda-graph off``.

    python benchmarks/epoch_time.py [--model final] [--repeats 5] [--device auto] [--workers 2] [--record F]
"""

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mnist_course.augment import Augment
from mnist_course.cuda_graph import GraphedStep
from mnist_course.data import get_data
from mnist_course.recipes import make_optimizer
from mnist_course.registry import RECIPES, get_model
from mnist_course.report import environment_line
from mnist_course.train import train_epoch, train_step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_epoch(model, loader, optimizer, device, step=train_step) -> float:
    sync(device)
    start = time.perf_counter()
    train_epoch(model, loader, optimizer, step=step, progress="off")
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="final")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for the classic pipeline")
    parser.add_argument("--train-size", type=int, default=None, help="images per epoch (default: all 60,000)")
    parser.add_argument("--cuda-graph", choices=["on", "off"], default="on",
                        help="on a CUDA GPU, replay each step as a CUDA graph, in all three (default: on)")
    parser.add_argument("--record", metavar="PATH", help="append this run's output, dated, to a Markdown file")
    args = parser.parse_args()
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    recipe = RECIPES[args.model]
    augment = Augment(recipe.degrees or 7.0, recipe.translate)
    common = {"batch_size": recipe.batch_size, "augment": augment, "device": args.device,
              "train_size": args.train_size}
    classic = get_data(pipeline="loader", **common).train
    pipelines = {"loader": DataLoader(classic.dataset, recipe.batch_size, shuffle=True, num_workers=args.workers,
                                      pin_memory=classic.pin_memory),
                 "device": get_data(pipeline="device", **common).train}
    device = pipelines["device"].images.device
    model = get_model(args.model).to(device)
    optimizer = make_optimizer(model, recipe)
    graph = device.type == "cuda" and args.cuda_graph == "on"
    step = GraphedStep(model, recipe.batch_size) if graph else train_step
    batches = [(x.clone(), y.clone()) for x, y in pipelines["device"]]  # for the compute floor

    say(environment_line(str(device)))
    say(f"model {args.model}, batch size {recipe.batch_size}, {len(pipelines['device'].labels):,} images "
        f"per epoch, augmentation ±{augment.degrees}° / {augment.translate:.0%}, {args.workers} DataLoader workers, "
        f"CUDA graph {'on' if graph else 'off'}")
    time_epoch(model, pipelines["device"], optimizer, device, step)  # warm-up (allocator, kernels)
    times = {"loader": [], "device": [], "compute": []}
    for repeat in range(args.repeats):
        for name in ("loader", "device"):
            times[name].append(time_epoch(model, pipelines[name], optimizer, device, step))
        times["compute"].append(time_epoch(model, batches, optimizer, device, step))
        say(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    median = {k: statistics.median(v) for k, v in times.items()}
    say("median epoch: " + ", ".join(f"{k} {v:.2f} s" for k, v in median.items()))
    # Ratios are taken within each repeat, then the median: a machine whose speed drifts between repeats
    # (a shared CPU does) moves both sides of a ratio together, not the ratio.
    speedup = statistics.median(a / b for a, b in zip(times["loader"], times["device"]))
    overhead = statistics.median(a / b - 1 for a, b in zip(times["device"], times["compute"]))
    say(f"speedup over DataLoader: {speedup:.2f}x; overhead over compute: {100 * overhead:.0f}%")
    if args.record:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        command = " ".join(["python", *sys.argv])
        with Path(args.record).open("a") as f:
            f.write(f"\n## {stamp}: {device}\n\n`{command}`\n\n```\n" + "\n".join(lines) + "\n```\n")


if __name__ == "__main__":
    main()
