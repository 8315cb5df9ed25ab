"""One line that says where a number was measured: device, its name, threads, torch and Python."""

import platform

import torch


def environment_line(device: str, seconds: float | None = None) -> str:
    """Where (and how long): device, torch version, Python, threads and, if given, wall time."""
    name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "CPU"
    line = (f"device: {device} ({name}, {torch.get_num_threads()} threads), torch {torch.__version__}, "
            f"Python {platform.python_version()}")
    return line if seconds is None else f"{line}, wall time {seconds / 60:.1f} min"
