"""Execute a notebook with nbclient in this Python (its kernel is this interpreter) and check what it stores.

``python tests/browser/run_notebook.py tests/browser/explorers.ipynb``: every cell must run without error,
in a kernel with this interpreter's IPython, ipywidgets and torch; every widget must be one of ipywidgets'
core widgets, never an ``Output`` (what Colab's widget manager draws); every explorer's output must carry
the widget view, a text line and a PNG; the live dashboard's PNG must be its final curves (the picture of
its ``Image`` in the widget state nbclient stores), not the "waiting" chart it was first displayed with.
Exits non-zero, saying why, otherwise prints one line.
"""

import base64
import sys
import time

import IPython
import ipywidgets
import nbformat
import torch
from nbclient import NotebookClient

VIEW, STATE = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"


def main(path: str) -> None:
    notebook = nbformat.read(path, as_version=4)
    start = time.monotonic()
    NotebookClient(notebook, timeout=600, kernel_name="python3", store_widget_state=True).execute()
    printed = "".join(o.get("text", "") for o in notebook.cells[1].outputs)
    versions = f"IPython {IPython.__version__}, ipywidgets {ipywidgets.__version__}, torch {torch.__version__}"
    assert versions in printed, (versions, printed)  # the kernel ran this interpreter, with these versions
    state = notebook.metadata["widgets"][STATE]["state"]
    for model in state.values():  # what Colab's widget manager draws: ipywidgets' core widgets, no Output
        assert model["model_module"] in {"@jupyter-widgets/controls", "@jupyter-widgets/base"}, model["model_module"]
        assert model["model_name"] != "OutputModel", "an Output widget"
    apps = [(i, o) for i, cell in enumerate(notebook.cells) for o in cell.get("outputs", [])
            if VIEW in o.get("data", {}) and "image/png" in o["data"]]
    assert len(apps) == 5, f"expected 5 explorers, found {len(apps)}"
    for i, output in apps:
        assert set(output["data"]) == {VIEW, "image/png", "text/plain"}, (i, set(output["data"]))
        children = state[output["data"][VIEW]["model_id"]]["state"]["children"]
        image = state[children[0].removeprefix("IPY_MODEL_")]
        (buffer,) = [b for b in image.get("buffers", []) if b["path"] == ["value"]]
        png = base64.b64decode(output["data"]["image/png"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n", i
        if "live_dashboard" in notebook.cells[i].source:
            assert base64.b64decode(buffer["data"]) == png, "the dashboard's stored PNG is not its final curves"
            status = state[children[-1].removeprefix("IPY_MODEL_")]["state"]["value"]
            assert "epoch 2" in status or "epoch 3" in status, status
    print(f"{path}: ran in {time.monotonic() - start:.0f} s; {len(apps)} explorers, each with its PNG")


if __name__ == "__main__":
    main(sys.argv[1])
