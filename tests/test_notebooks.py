"""Execute every notebook in notebooks/ headless and check the numbers it reports.

Each notebook runs in a fresh kernel of *this* interpreter (a private ``python3`` kernelspec pointing at
``sys.executable`` is put first on ``JUPYTER_PATH``, so a stale or foreign ``python3`` kernelspec elsewhere on the
machine is never used), with ``notebooks/`` as working directory and ``MPLBACKEND=Agg``. Any cell that raises
fails the test. A notebook listed in `EXPECTED` must print a JSON object on the last line of its last code cell;
the test checks those values.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _check_01_ingest_c3d(values: dict[str, Any]) -> None:
    assert values["n_left_foot_strikes"] == 4
    assert values["n_right_foot_strikes"] == 5
    assert values["n_events"] == 18
    assert 900.0 <= values["peak_vertical_force_N"] <= 1100.0
    assert values["first_sample_s"] == pytest.approx(0.62)  # first_frame 62 at 100 Hz


EXPECTED: dict[str, Callable[[dict[str, Any]], None]] = {
    "01_ingest_c3d.ipynb": _check_01_ingest_c3d,
}


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A jupyter data dir holding a ``python3`` kernelspec that runs the current interpreter."""
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(path=str(root / "kernels" / "python3"))  # argv: [sys.executable, -m, ipykernel_launcher, ...]
    spec = json.loads((root / "kernels" / "python3" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    return root


def _snapshot(*dirs: Path) -> set[str]:
    return {str(p) for d in dirs if d.is_dir() for p in d.rglob("*") if ".ipynb_checkpoints" not in p.parts}


def _last_json(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """The JSON object printed on the last line of the last code cell's stdout."""
    cell = [c for c in nb.cells if c.cell_type == "code"][-1]
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, f"the last code cell printed nothing on stdout; outputs: {cell.outputs}"
    return json.loads(lines[-1])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not with_outputs, f"{path.name}: clear the outputs of cells {with_outputs} before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, kernel_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    nb = nbformat.read(path, as_version=4)
    before = _snapshot(NOTEBOOK_DIR, REPO / "sample_data")
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError (with the cell and traceback) if any cell raises
    created = _snapshot(NOTEBOOK_DIR, REPO / "sample_data") - before
    assert not created, f"{path.name} wrote into the repository: {sorted(created)}"
    check = EXPECTED.get(path.name)
    if check is not None:
        check(_last_json(nb))
