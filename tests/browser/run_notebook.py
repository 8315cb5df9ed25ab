"""Execute course notebooks with nbclient in this Python (its kernel is this interpreter) and check what they store.

``python tests/browser/run_notebook.py notebooks/01_baseline.ipynb …``: each notebook runs in a copy in a
temporary folder (its saved runs stay there), in quick mode as the caller sets it. Every cell must run
without error, in a kernel with this interpreter's torch (the last cell prints it); every widget must be
one of ipywidgets' core widgets, never an ``Output`` (what Colab's widget manager draws); every explorer's
output must carry the widget view, a text line and a PNG, marked for the save hook, which must leave the
PNG and the text; the live dashboard's PNG must be its final curves (the picture of its ``Image`` in the
widget state nbclient stores), not the "waiting" chart it was first displayed with.
Exits non-zero, saying why, otherwise prints one line per notebook.
"""

import base64
import copy
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

from mnist_course_jupyter import MARK, VIEW, keep_pictures

STATE = "application/vnd.jupyter.widget-state+json"


def run(path: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        copy_path = Path(shutil.copy(path, folder))
        notebook = nbformat.read(copy_path, as_version=4)
        start = time.monotonic()
        NotebookClient(notebook, timeout=600, kernel_name="python3", store_widget_state=True,
                       resources={"metadata": {"path": folder}}).execute()
    printed = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    assert f"torch {torch.__version__}" in printed, printed  # the kernel ran this interpreter's torch
    state = notebook.metadata["widgets"][STATE]["state"]
    for model in state.values():  # what Colab's widget manager draws: ipywidgets' core widgets, no Output
        assert model["model_module"] in {"@jupyter-widgets/controls", "@jupyter-widgets/base"}, model["model_module"]
        assert model["model_name"] != "OutputModel", "an Output widget"
    apps = [(i, o) for i, cell in enumerate(notebook.cells) for o in cell.get("outputs", []) if VIEW in o.get("data", {})]
    assert apps, "no explorer"
    for i, output in apps:
        assert set(output["data"]) == {VIEW, "image/png", "text/plain"}, (i, set(output["data"]))
        assert output["metadata"] == MARK, (i, output["metadata"])
        png = base64.b64decode(output["data"]["image/png"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n", i
        if "live_dashboard(" in notebook.cells[i].source:
            children = state[output["data"][VIEW]["model_id"]]["state"]["children"]
            image = state[children[0].removeprefix("IPY_MODEL_")]
            (buffer,) = [b for b in image.get("buffers", []) if b["path"] == ["value"]]
            assert base64.b64decode(buffer["data"]) == png, "the dashboard's stored PNG is not its final curves"
    saved = {"type": "notebook", "content": copy.deepcopy(dict(notebook))}
    keep_pictures(saved)
    for i, _output in apps:
        kept = [o for o in saved["content"]["cells"][i]["outputs"] if o.get("metadata") == MARK]
        assert [set(o["data"]) for o in kept] == [{"image/png", "text/plain"}], i
    print(f"{path.name}: ran in {time.monotonic() - start:.0f} s; {len(apps)} explorer(s), each with its PNG")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        run(Path(name))
