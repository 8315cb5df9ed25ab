"""mnist_course: the plumbing of a notebook course on small CNNs for MNIST.

The teaching lives in ``notebooks/``; this package holds what every notebook needs: data
(:func:`get_data`), training (:func:`fit`, :class:`History`), models (:func:`get_model`),
receptive fields, plots and widgets.
"""

from .augment import Augment
from .data import get_data, load_mnist, normalize
from .history import History
from .models import get_model, model_names
from .receptive_field import receptive_field_table
from .summary import check_budget, count_parameters, summary
from .train import fit, seed_everything

__version__ = "0.1.0"
__all__ = ["Augment", "History", "check_budget", "count_parameters", "fit", "get_data", "get_model",
           "load_mnist", "model_names", "normalize", "receptive_field_table", "seed_everything", "summary"]
