"""The numbered notebooks (labkit.notebooks): jupytext pairs in sync, outputs stripped, papermill
parameters declared, the checks catching drift, and all seven notebooks executed in order in quick
mode (each notebook asserts what it shows, so a failing assertion fails this test)."""
from __future__ import annotations

import json
import shutil

import nbformat
import pytest

from labkit import notebooks as NB

EXPECTED = ["00_tour", "01_generate", "02_annotate", "03_sft", "04_grpo_dpa_hcm", "05_evaluate", "06_app"]


def test_the_seven_notebooks_exist_in_order():
    # The walk-through is exactly 00..06, each a .py/.ipynb pair.
    assert [p.stem for p in NB.notebook_scripts()] == EXPECTED
    assert all(p.with_suffix(".ipynb").exists() for p in NB.notebook_scripts())


def test_pairs_in_sync_stripped_and_parametrised():
    # check_notebooks finds nothing wrong with the committed notebooks.
    assert NB.check_notebooks() == []


def test_parameters_cells_declare_the_shared_settings():
    # papermill sees the shared parameters in every notebook, with small mode as the default.
    import papermill as pm

    for py in NB.notebook_scripts():
        params = pm.inspect_notebook(str(py.with_suffix(".ipynb")))
        assert {"SMALL", "QUICK", "DATA_DIR", "RUN_DIR", "SEED"} <= set(params), py.name
        assert params["SMALL"]["default"] == "True" and params["QUICK"]["default"] == "False", py.name


def test_check_catches_drift_outputs_and_missing_pairs(tmp_path):
    # An edited script, an output left in a notebook and an unpaired notebook are each named.
    for name in ("00_tour", "01_generate"):
        for suffix in (".py", ".ipynb"):
            shutil.copy(NB.NOTEBOOK_DIR / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    assert NB.check_notebooks(tmp_path) == []
    py = tmp_path / "00_tour.py"
    py.write_text(py.read_text().replace("# # 00 · A tour of the task", "# # 00 · An edited title"))
    nb = nbformat.read(tmp_path / "01_generate.ipynb", as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", text="hello")]
    code.execution_count = 3
    nbformat.write(nb, tmp_path / "01_generate.ipynb")
    shutil.copy(NB.NOTEBOOK_DIR / "02_annotate.ipynb", tmp_path / "02_annotate.ipynb")
    problems = "\n".join(NB.check_notebooks(tmp_path))
    assert "00_tour.py and 00_tour.ipynb differ (first at cell 0" in problems
    assert "01_generate.ipynb: cell" in problems and "has outputs" in problems and "execution count" in problems
    assert "02_annotate.ipynb: no paired 02_annotate.py" in problems
    # strip + sync repair them
    nbformat.write(NB.strip_notebook(nbformat.read(tmp_path / "01_generate.ipynb", as_version=4)), tmp_path / "01_generate.ipynb")
    (tmp_path / "02_annotate.ipynb").unlink()
    NB.sync_notebooks(tmp_path, source="py")
    assert NB.check_notebooks(tmp_path) == []


def test_profiles_and_recipe_set(tmp_path):
    # Quick mode is smaller than small mode; the notebooks' recipe set points at the given data,
    # carries the overrides and adds the Table 5 arms before their dependants.
    quick, small = NB.profile(True, True), NB.profile(True, False)
    assert quick.synth["train"] < small.synth["train"] and quick.model_size == "tiny"
    assert NB.profile(False).recipe_set == "paper" and NB.profile(False).base_model.startswith("InternVL3")
    rs = NB.lab_recipe_set(quick, tmp_path / "data", tmp_path / "run")
    names = [a.name for a in rs.arms]
    assert {"sft-weak", "sft-stage11", "sft-all"} <= set(names)
    assert names.index("sft-stage11") < names.index("sft-all")
    assert rs.data["dir"] == str((tmp_path / "data").resolve())
    assert rs.evaluation["limit"] == quick.evaluation["limit"]
    sft = rs.arm("sft")
    assert sft.set["limit"] == quick.sft_set["limit"] and 5 in sft.tables
    assert rs.arm("sft-all").set["model"] == "{run_dir}/sft-stage11/final"
    assert rs.arm("grpo").set["training.max_completion_length"] == quick.grpo_set["training.max_completion_length"]
    # Table 5's rows come from recipes/sets/table5-small.yaml: one arm per row of the paper's table.
    rows = {a.name: a.rows[5] for a in rs.arms if 5 in a.rows}
    assert rows == {"sft-weak": "weak CoT", "sft-stage11": "+ captions", "sft": "answer-driven only", "sft-all": "all"}
    assert sorted(rows.values()) == sorted(NB.PAPER["table5"])
    # The paper set's `sft` is stage 1.1 then 1.2: there it is Table 5's "all" row.
    gpu = NB.lab_recipe_set(NB.profile(False), tmp_path / "data", tmp_path / "run-gpu")
    rows = {a.name: a.rows[5] for a in gpu.arms if 5 in a.rows}
    assert rows == {"sft-weak": "weak CoT", "sft-stage11": "+ captions", "sft-answer-driven": "answer-driven only",
                    "sft": "all"}
    assert gpu.arm("sft").needs == ["sft-stage11"] and gpu.arm("sft-answer-driven").set["model"] == "InternVL3-2B-hf"


@pytest.mark.slow
@pytest.mark.notebooks
def test_notebooks_execute_in_quick_mode(tmp_path):
    # All seven run in order with papermill (each asserts its own results); the chain leaves its files.
    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "out"
    timings = NB.run_notebooks(out, data_dir=data, run_dir=run, quick=True)
    assert list(timings) == EXPECTED
    saved = json.loads((out / "timings.json").read_text())
    assert saved["parameters"]["QUICK"] is True and set(saved["seconds"]) == set(EXPECTED)
    for name in EXPECTED:
        executed = nbformat.read(out / f"{name}.ipynb", as_version=4)
        errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors, (name, errors[:1])
        assert executed.metadata["papermill"]["parameters"]["DATA_DIR"] == str(data.resolve())
    # 01 -> 02: data and annotations; 03/04 -> 05: the arms; 06: the relabelled retraining
    assert (data / "synth" / "train.parquet").exists() and (data / "generated" / "exploration.parquet").exists()
    assert (data / "annotated-oracle" / "train.parquet").exists() and (data / "annotations.sqlite").exists()
    results = json.loads((run / "results.json").read_text())
    assert {"base-cot", "sft", "grpo", "dpa-grpo", "hcm-grpo"} <= set(results["arms"])
    assert (run / "sft-relabelled" / "final" / "config.json").exists()
    # the sources stay stripped after a run
    assert NB.check_notebooks() == []
