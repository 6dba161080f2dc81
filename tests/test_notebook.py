"""The example notebook (examples/compare_architectures.ipynb) runs from top to bottom."""

from __future__ import annotations

import pytest
from conftest import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("keras")


def test_the_example_notebook_runs_end_to_end(tmp_path):
    notebook = nbformat.read(REPO / "examples" / "compare_architectures.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on failure
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "18 trials, 1 pack(s)" in text
    assert "test_accuracy" in text and "hidden_units" in text  # the table and the summary
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the two figures
    assert not [o for o in outputs if o.get("output_type") == "error"]
