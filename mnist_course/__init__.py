"""mnist_course: the helpers of a notebook course on small CNNs for MNIST.

A batch flows data → model → ``fit`` → ``History`` → plots and widgets: :func:`get_data` gives batches,
:mod:`.models` the networks, :func:`fit` trains them and returns a :class:`History`, which :mod:`.report`,
:mod:`.plots` and :mod:`.widgets` turn into tables, figures and explorers. The lessons are in the notebooks.
"""

from .augment import Augment
from .checks import check_answer, design_check, run_check
from .data import VAL_SIZE, get_data, load_split, normalize
from .history import History, load_run
from .mnist_files import load_mnist
from .quick import quick_mode
from .receptive_field import receptive_field_table
from .registry import get_model, model_names
from .report import diagnosis, environment_line, result, source
from .summary import check_budget, count_parameters, summary
from .train import fit, seed_everything

__version__ = "0.2.0"
__all__ = ["VAL_SIZE", "Augment", "History", "check_answer", "check_budget", "count_parameters", "design_check", "diagnosis",
           "environment_line", "fit", "get_data", "get_model", "load_mnist", "load_run", "load_split", "model_names",
           "normalize",
           "quick_mode", "receptive_field_table", "result", "run_check", "seed_everything", "source", "summary"]
