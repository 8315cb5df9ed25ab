"""Quick mode: tiny data and one epoch, so every notebook and command can be checked in minutes. A notebook
reads ``QUICK = quick_mode()`` once and picks its own sizes; numbers from quick mode mean nothing."""

import os

QUICK_TRAIN_SIZE, QUICK_TEST_SIZE, QUICK_EPOCHS = 2_000, 1_000, 1
QUICK_NOTE = (f"quick mode: {QUICK_EPOCHS} epoch on {QUICK_TRAIN_SIZE:,} training and {QUICK_TEST_SIZE:,} "
              "test images, a check that everything runs; these numbers are not results")


def quick_mode() -> bool:
    """True when ``MNIST_COURSE_SMOKE`` (CI's switch) is set to 1/true/yes/on."""
    return os.environ.get("MNIST_COURSE_SMOKE", "").strip().lower() in {"1", "true", "yes", "on"}
