"""The one error the course raises on purpose; the CLI prints it as one line ``error: …`` (exit status 2)."""


class CourseError(Exception):
    """A mistake (bad data, argument, path or file) explained in one line that names the thing."""
