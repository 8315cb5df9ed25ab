"""Smoke mode: ``MNIST_COURSE_SMOKE=1`` shrinks data and epochs so every notebook runs in seconds.

Notebooks are written for full runs (``fit(model, data, epochs=15)``); in smoke mode the package caps
those numbers itself, so CI executes the very same notebooks without editing them.
"""

import os

SMOKE_TRAIN_SIZE = 2_000
SMOKE_TEST_SIZE = 1_000
SMOKE_EPOCHS = 1

_announced = False


def smoke_mode() -> bool:
    """True when ``MNIST_COURSE_SMOKE`` is set to 1/true/yes/on; announces itself once per process."""
    global _announced
    on = os.environ.get("MNIST_COURSE_SMOKE", "").strip().lower() in {"1", "true", "yes", "on"}
    if on and not _announced:
        _announced = True
        print("smoke mode: on (MNIST_COURSE_SMOKE=1: tiny data and 1 epoch; these numbers mean nothing)")
    return on


def cap(value: int | None, limit: int) -> int | None:
    """``value`` limited to ``limit`` in smoke mode (None means 'everything'), unchanged otherwise."""
    if not smoke_mode():
        return value
    return limit if value is None else min(value, limit)
