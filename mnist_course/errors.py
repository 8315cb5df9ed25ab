"""The one error the course raises on purpose: a mistake it can explain in one sentence.

The CLI prints ``error: <message>`` for a :class:`CourseError` and exits with status 2, never a traceback.
"""


class CourseError(Exception):
    """A mistake (bad data, argument, path or file) explained in one line that names the thing."""
