"""The notebooks' jupytext pairs: ``notebooks/NN_name.py`` beside ``NN_name.ipynb``.

`check_notebooks` reports pairs out of sync, outputs left in an ``.ipynb`` and parameters
cells without their tag; `sync_notebooks` rewrites one side from the other (outputs
stripped, cell ids from the content); `strip_notebook` drops outputs and execution counts.
Run them as ``python -m labkit.notebooks check | sync | strip`` (`labkit.notebooks`).
jupytext and nbformat are imported where used: the notebooks' helpers (`labkit.notebooks`)
load without them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
KERNEL_NAME = "python3"  # the notebooks' kernelspec; resolved to this interpreter (labkit.notebooks.ensure_kernel)


def notebook_scripts(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered jupytext scripts ``NN_name.py``, in order."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.py"))


def _cells(nb) -> list[tuple[str, str, tuple]]:
    """What must agree between a pair: per cell its type, source and tags."""
    out = []
    for c in nb.cells:
        tags = tuple(sorted(c.get("metadata", {}).get("tags", [])))
        out.append((c.cell_type, c.source.strip(), tags))
    return out


def stripped_problems(nb) -> list[str]:
    """Why a notebook is not stripped (empty list: it is)."""
    problems = []
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            if c.get("outputs"):
                problems.append(f"cell {i} has outputs")
            if c.get("execution_count") is not None:
                problems.append(f"cell {i} has an execution count")
        extra = set(c.get("metadata", {})) - {"tags", "lines_to_next_cell", "jupyter"}
        if extra:
            problems.append(f"cell {i} has metadata {sorted(extra)}")
    if "papermill" in nb.metadata:
        problems.append("notebook metadata holds papermill results")
    return problems


def strip_notebook(nb):
    """Remove outputs, execution counts and run metadata (in place); returns ``nb``."""
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs = []
            c.execution_count = None
        meta = c.get("metadata", {})
        for key in list(meta):
            if key not in ("tags", "jupyter"):
                del meta[key]
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    return nb


def check_notebooks(folder: Path = NOTEBOOK_DIR) -> list[str]:
    """Problems with the notebooks in ``folder``: unpaired, out of sync, unstripped, untagged."""
    import jupytext
    import nbformat

    problems = []
    scripts = notebook_scripts(folder)
    if not scripts:
        return [f"no numbered notebooks (NN_name.py) in {folder}"]
    for py in scripts:
        ipynb = py.with_suffix(".ipynb")
        if not ipynb.exists():
            problems.append(f"{py.name}: no paired {ipynb.name} (run: python -m labkit.notebooks sync)")
            continue
        text_nb = jupytext.read(py)
        nb = nbformat.read(ipynb, as_version=4)
        a, b = _cells(text_nb), _cells(nb)
        if a != b:
            where = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            problems.append(f"{py.name} and {ipynb.name} differ (first at cell {where}; {len(a)} vs {len(b)} cells); "
                            "run: python -m labkit.notebooks sync")
        problems += [f"{ipynb.name}: {p}" for p in stripped_problems(nb)]
        params = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        if len(params) != 1:
            problems.append(f"{ipynb.name}: needs exactly one cell tagged 'parameters', has {len(params)}")
        if nb.metadata.get("kernelspec", {}).get("name") != KERNEL_NAME:
            problems.append(f"{ipynb.name}: kernelspec name must be {KERNEL_NAME!r} (papermill needs one)")
    for ipynb in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        if not ipynb.with_suffix(".py").exists():
            problems.append(f"{ipynb.name}: no paired {ipynb.with_suffix('.py').name}")
    return problems


def sync_notebooks(folder: Path = NOTEBOOK_DIR, source: str = "py") -> list[Path]:
    """Rewrite one side of every pair from the other (``source`` = ``py`` or ``ipynb``), stripped."""
    import jupytext
    import nbformat

    written = []
    for py in notebook_scripts(folder):
        ipynb = py.with_suffix(".ipynb")
        if source == "py":
            nb = strip_notebook(jupytext.read(py))
            # Cell ids from the content (jupytext draws random ones): re-syncing changes nothing.
            seen: dict[str, int] = {}
            for cell in nb.cells:
                h = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
                seen[h] = seen.get(h, 0) + 1
                cell["id"] = h if seen[h] == 1 else f"{h}-{seen[h]}"
            nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL_NAME}
            nb.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
            nbformat.write(nb, ipynb)
            written.append(ipynb)
        else:
            nb = strip_notebook(nbformat.read(ipynb, as_version=4))
            jupytext.write(nb, py, fmt="py:percent")
            written.append(py)
    return written
