"""A Jupyter server extension: a saved notebook keeps each explorer as its picture.

An explorer's output holds a widget view, a text line and a PNG. Saved as it is, the view wins on re-opening,
but its widget lives only in the kernel that drew it: "Loading widget..." or an error box. Before each save,
this drops the view from outputs marked with ``MARK``; the open page keeps its live widget. Outside the package:
the server must not import torch. Enabled by config files in ``etc/jupyter`` (from ``pip install .``, or README).
"""

from typing import Any

VIEW = "application/vnd.jupyter.widget-view+json"
MARK = {"mnist_course": "explorer"}


def is_explorer(output: dict) -> bool:
    """Whether a notebook output carries an explorer's mark."""
    return output.get("metadata", {}).get("mnist_course") == MARK["mnist_course"]


def keep_pictures(model: dict, **_kwargs: Any) -> None:
    """Pre-save hook: in a notebook model, drop the widget view of every marked output that has a PNG."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    for cell in model["content"].get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if VIEW in data and "image/png" in data and is_explorer(output):
                del data[VIEW]


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "mnist_course_jupyter"}]


def _load_jupyter_server_extension(server_app: Any) -> None:  # jupyter_server: JupyterLab 4, Notebook 7
    server_app.contents_manager.register_pre_save_hook(keep_pictures)


def load_jupyter_server_extension(nb_app: Any) -> None:  # the classic Notebook 6: one hook, so chain any other
    manager, other = nb_app.contents_manager, nb_app.contents_manager.pre_save_hook

    def hook(model: dict, **kwargs: Any) -> None:
        keep_pictures(model)
        if other:
            other(model=model, **kwargs)

    manager.pre_save_hook = hook
