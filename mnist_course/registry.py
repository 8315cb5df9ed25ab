"""Every model by name: the course's steps and the published designs, with their recipes."""

from collections.abc import Callable

from torch import nn

from .errors import CourseError
from .models import COURSE_MODELS
from .published import PUBLISHED
from .recipes import COURSE, FINAL, SMALL, Recipe

MODELS: dict[str, Callable[[], nn.Module]] = {name: e[0] for name, e in (COURSE_MODELS | PUBLISHED).items()}
DESCRIPTIONS = {name: text for name, (_, text) in COURSE_MODELS.items()} | {
    name: make.__doc__.splitlines()[0] for name, (make, _, _) in PUBLISHED.items()}
RECIPES: dict[str, Recipe] = {"baseline": COURSE, "skeleton": COURSE, "batchnorm": COURSE, "dropout": COURSE,
                              "gap": COURSE, "final": FINAL, "tiny": SMALL}
RECIPES |= {name: recipe for name, (_, recipe, _) in PUBLISHED.items()}
CLAIMS = {"final": "≥ 99.4 % in each of the last 3 of 15 epochs, every seed",
          "tiny": "the goal: the same as final's, under 3,762 parameters"}
CLAIMS |= {name: claim for name, (_, _, claim) in PUBLISHED.items()}


def model_names() -> list[str]:
    """The registry's names, in course order."""
    return list(MODELS)


def get_model(name: str) -> nn.Module:
    """A new, untrained model; :class:`CourseError` for a name that is not in the registry."""
    if name not in MODELS:
        raise CourseError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]()
