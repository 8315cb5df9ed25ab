"""Errors the course raises on purpose: each carries one readable sentence.

The CLI prints ``error: <message>`` for any :class:`CourseError` and exits with status 2,
so a learner never sees a traceback for a mistake that we can explain.
"""


class CourseError(Exception):
    """Base class for every error that should reach the learner as one clear line."""


class DataNotFoundError(CourseError):
    """The MNIST files are missing and could not be downloaded."""


class CorruptDataError(CourseError):
    """An MNIST file exists but is truncated or is not an MNIST idx file."""


class UnknownModelError(CourseError):
    """A model name that is not in the registry."""


class BudgetExceededError(CourseError):
    """A model has more parameters than the course allows."""
