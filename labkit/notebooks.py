"""The numbered notebooks: run them in order, check them, and the few helpers they share.

The walk-through lives in ``notebooks/NN_name.ipynb``, each paired with a jupytext percent
script ``notebooks/NN_name.py`` (readable diffs; outputs are never committed; the pairs are
checked and synced by `labkit.notebook_pairs`)::

    python -m labkit.notebooks run            # execute 00..06 in order (papermill, small mode)
    python -m labkit.notebooks run --quick    # the CI settings: a few samples and steps (minutes)
    python -m labkit.notebooks run --only 03,04 --data-dir data/lab --run-dir runs/lab
    python -m labkit.notebooks check          # pairs in sync, outputs stripped, parameters cells tagged
    python -m labkit.notebooks sync           # rewrite every .ipynb from its .py (outputs stripped)
    python -m labkit.notebooks strip          # strip outputs of the .ipynb files in place
    python -m labkit.notebooks kernel         # make sure the project's kernel (this .venv) exists

``run`` executes copies into a scratch folder (default ``runs/notebooks``, git-ignored): the
sources stay stripped. Every notebook gets the parameters ``SMALL``, ``QUICK``, ``DATA_DIR``,
``RUN_DIR`` and ``LAUNCH_APP=False`` (no server in batch runs), so 01's data feeds 02 and so on.
The time of each notebook goes to ``OUT/timings.json``.

Helpers the notebooks import (they stay thin): `enter_project` (work from the repository root,
so recipe paths resolve), `profile` (the settings of quick / small / GPU mode), `lab_recipe_set`
(the ablation recipe set of notebooks 03-05, derived from ``recipes/sets/small.yaml`` or the
paper set) and `PAPER` (the paper's numbers, owned by `labkit.paper`, shown beside ours).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from labkit.ablate import Arm, load_recipe_set, resolve_set_path
from labkit.data import open_image
from labkit.notebook_pairs import (
    KERNEL_NAME, NOTEBOOK_DIR, ROOT, check_notebooks, notebook_scripts, strip_notebook, sync_notebooks,
)
from labkit.paper import PAPER, TABLE3_DIMENSIONS  # noqa: F401  (the notebooks import them from here)

FALLBACK_KERNEL = "labkit"       # installed into sys.prefix when "python3" would start another Python



# ----------------------------------------------------------------------------- settings per mode

@dataclass
class Profile:
    """What one mode of the notebooks runs (``quick`` for CI, ``small`` for a laptop, ``gpu``)."""

    name: str = field(metadata={"help": "quick | small | gpu"})
    synth: dict = field(metadata={"help": "labkit.synth.make_dataset kwargs of notebook 01"})
    model_arch: str = field(default="internvl", metadata={"help": "architecture of the built base model (CPU modes)"})
    model_size: str = field(default="small", metadata={"help": "tiny | small (CPU modes): labkit.models.build_model size"})
    base_model: str | None = field(default=None, metadata={"help": "hub id or folder of a pretrained base (GPU mode)"})
    recipe_set: str = field(default="small", metadata={"help": "recipe set the notebooks' ablation derives from"})
    evaluation: dict = field(default_factory=dict, metadata={"help": "evaluation settings (split, batch_size, max_new_tokens, limit)"})
    sft_set: dict = field(default_factory=dict, metadata={"help": "recipe overrides of every SFT arm"})
    grpo_set: dict = field(default_factory=dict, metadata={"help": "recipe overrides of every GRPO arm"})
    generate_recipe: str = field(default="recipes/generate/small.yaml", metadata={"help": "FLUX generation recipe of notebook 01"})
    originals: int = field(default=2, metadata={"help": "originals notebook 01 sends through the FLUX pipeline"})
    annotate_limit: int = field(default=8, metadata={"help": "samples notebook 02 sends to the judge per method"})
    judge_max_new_tokens: int = field(default=48, metadata={"help": "reply budget of the local judge"})
    image_size: int | None = field(default=64, metadata={"help": "image side the models see (None: the processor's)"})


def profile(small: bool = True, quick: bool = False) -> Profile:
    """The settings of a mode: ``quick`` (CI, seconds per stage), ``small`` (CPU, minutes), ``gpu``."""
    if not small:
        return Profile(
            name="gpu", synth=dict(train=1044, test=468, pseudo=2000, size=448, seed=0),
            base_model="InternVL3-2B-hf", recipe_set="paper", image_size=None,
            evaluation=dict(split="test", batch_size=16, max_new_tokens=1024),
            generate_recipe="recipes/generate/paper.yaml", originals=8, annotate_limit=64,
            judge_max_new_tokens=1024,
        )
    if quick:
        # Each training arm: a handful of optimizer steps on a handful of samples. Enough to run
        # every code path, not to learn the task. Short oracle CoT ("A: good. B: floating (placement). ...")
        # keeps replies within a few dozen tokens.
        return Profile(
            name="quick", synth=dict(train=24, test=20, pseudo=16, size=56, seed=0, workers=1, cot_style="short"),
            model_size="tiny",
            evaluation=dict(split="test", batch_size=20, max_new_tokens=40, limit=20),
            sft_set={"limit": 24, "training.num_train_epochs": 4, "training.save_strategy": "no",
                     "training.logging_steps": 1},
            grpo_set={"limit": 8, "training.save_strategy": "no", "training.logging_steps": 1,
                      "training.max_completion_length": 40},
            originals=2, annotate_limit=6, judge_max_new_tokens=32,
        )
    return Profile(
        # The `small` recipe set's sizes (recipes/sets/small.yaml), plus a pseudo_label split for stage 1.1.
        name="small", synth=dict(train=2000, test=400, pseudo=128, size=224, seed=0, cot_style="short"),
        model_size="small",
        evaluation=dict(split="test", batch_size=20),
        originals=4, annotate_limit=16, judge_max_new_tokens=64,
    )


def enter_project() -> Path:
    """Make the repository root the working directory (recipes name paths from there)."""
    os.chdir(ROOT)
    return ROOT


def lab_recipe_set(prof: Profile, data_dir, run_dir, *, table5: bool = True):
    """The recipe set of notebooks 03-05: the shipped set of the profile, pointed at ``data_dir``.

    The data folder is notebook 01's (nothing is synthesized here); the base model goes to
    ``RUN_DIR/base-model``; the profile's evaluation settings and per-stage overrides apply to
    every arm (``table5`` adds the SFT-data arms of Table 5 from ``recipes/sets/table5-SET.yaml``
    where the set does not list them itself; an arm the set already has only gets its Table 5
    row). The set is written to
    ``RUN_DIR/recipe-set.yaml`` and loaded with `labkit.ablate.load_recipe_set`, so the runner
    checks it like any other; re-running skips finished arms (their ``done.json``).
    """
    import yaml

    run_dir = Path(run_dir)
    raw = yaml.safe_load(resolve_set_path(prof.recipe_set).read_text())
    raw["name"] = f"notebooks-{prof.name}"
    raw["description"] = f"the notebooks' arms ({prof.name} mode), derived from recipes/sets/{prof.recipe_set}.yaml"
    raw["data"] = {"dir": str(Path(data_dir).resolve())}
    if prof.base_model is None and (prof.name == "quick" or "pretrained" not in (raw.get("base") or {})):
        # quick mode: the tiny random model; small mode keeps the set's base (the lab's pretrained small VLM)
        raw["base"] = {"dir": "{run_dir}/base-model", "build": {"arch": prof.model_arch, "size": prof.model_size}}
    evaluation = dict(raw.get("evaluation") or {})
    evaluation.update(prof.evaluation)
    raw["evaluation"] = evaluation
    arms = list(raw["arms"])
    if table5 and not any(5 in (a.get("rows") or {}) for a in arms):
        t5 = yaml.safe_load(resolve_set_path(f"table5-{prof.recipe_set}").read_text())["arms"]
        by_name = {a.get("name"): a for a in arms}
        at = next(i for i, a in enumerate(arms) if a.get("name") == "sft") + 1
        extra = []
        for a in t5:
            if a["name"] in by_name:  # the set's own arm: it only gains its Table 5 row
                own = by_name[a["name"]]
                own["tables"] = sorted(set(own.get("tables") or []) | {5})
                own["rows"] = {**(own.get("rows") or {}), **a["rows"]}
            else:
                extra.append(copy.deepcopy(a))
        arms[at:at] = extra

    for a in arms:
        if a.get("kind") == "mine" and "limit" in prof.grpo_set and "limit" in Arm.__dataclass_fields__:
            a["limit"] = prof.grpo_set["limit"]   # mining covers exactly the samples GRPO trains on
        if not a.get("recipe"):
            continue
        stage = yaml.safe_load((ROOT / a["recipe"]).read_text()).get("stage")
        # The profile's settings win over the set's (quick mode shrinks every arm); arm-specific
        # keys the profile does not name (model, tasks) stay.
        a["set"] = {**(a.get("set") or {}), **(prof.sft_set if stage == "sft" else prof.grpo_set)}
    raw["arms"] = arms
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "recipe-set.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_recipe_set(path)


def contact_sheet(images, titles=None, tile: int = 128, columns: int | None = None):
    """Images in a row (or ``columns`` per row), each scaled to ``tile`` px high and titled: one PIL image."""
    from PIL import Image, ImageDraw

    images = [open_image(im) for im in images]
    titles = list(titles or [""] * len(images))
    scaled = [im.convert("RGB").resize((max(1, round(im.width * tile / im.height)), tile)) for im in images]
    columns = columns or len(scaled)
    rows = [scaled[i:i + columns] for i in range(0, len(scaled), columns)]
    head, pad = 16, 4
    width = max(sum(im.width + pad for im in row) for row in rows) + pad
    sheet = Image.new("RGB", (width, len(rows) * (tile + head + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    k = 0
    for r, row in enumerate(rows):
        x, y = pad, pad + r * (tile + head + pad)
        for im in row:
            draw.text((x, y), titles[k], fill="black")
            sheet.paste(im, (x, y + head))
            x += im.width + pad
            k += 1
    return sheet


# ----------------------------------------------------------------------------- kernel and run

def ensure_kernel() -> str:
    """The kernel name that runs THIS interpreter: ``python3`` when it resolves here (the venv's
    own kernelspec, whose ``python`` jupyter_client maps to sys.executable), else a ``labkit``
    kernelspec written into ``sys.prefix`` (so a fresh clone needs nothing but the venv)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    try:
        argv0 = ksm.get_kernel_spec(KERNEL_NAME).argv[0]
    except NoSuchKernel:
        argv0 = None
    if argv0 in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}") or (
            argv0 and Path(argv0).resolve() == Path(sys.executable).resolve()):
        return KERNEL_NAME
    try:
        spec = ksm.get_kernel_spec(FALLBACK_KERNEL)
        if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return FALLBACK_KERNEL
    except NoSuchKernel:
        pass
    kdir = Path(sys.prefix) / "share" / "jupyter" / "kernels" / FALLBACK_KERNEL
    kdir.mkdir(parents=True, exist_ok=True)
    (kdir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "labkit (.venv)", "language": "python",
        "env": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
    }, indent=1))
    return FALLBACK_KERNEL


def run_notebooks(out="runs/notebooks", *, data_dir="data/lab", run_dir="runs/lab", small: bool = True,
                  quick: bool = False, only: list[str] | None = None, parameters: dict | None = None,
                  folder: Path = NOTEBOOK_DIR, log_output: bool = False, timeout: int | None = None) -> dict:
    """Execute the notebooks in order with papermill into ``out``; returns ``{name: seconds}``.

    Paths are made absolute (the notebooks work from the repository root). A failing cell
    stops the run with papermill's error, which names the notebook and the cell; the partly
    executed copy stays in ``out`` for inspection.
    """
    import papermill as pm

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    kernel = ensure_kernel()
    params = {"SMALL": small, "QUICK": quick, "DATA_DIR": str(Path(data_dir).resolve()),
              "RUN_DIR": str(Path(run_dir).resolve()), "LAUNCH_APP": False}
    params.update(parameters or {})
    scripts = notebook_scripts(folder)
    if only:
        wanted = {o.zfill(2) if o.isdigit() else o for o in only}
        scripts = [p for p in scripts if p.stem[:2] in wanted or p.stem in wanted]
        if not scripts:
            raise ValueError(f"--only {','.join(only)} matches no notebook in {folder}")
    # Quick mode trains models of well under 1M parameters: a second OpenMP thread buys nothing
    # there, and on a busy machine its spin-waiting costs several times the work. The kernels
    # inherit this process's environment; it is restored afterwards.
    saved_env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if quick:
        for k in saved_env:
            os.environ.setdefault(k, "1")
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    try:
        for py in scripts:
            _run_one(pm, py, out, params, kernel, folder, log_output, timeout, timings, cpu)
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return timings


def _run_one(pm, py: Path, out: Path, params: dict, kernel: str, folder: Path, log_output: bool, timeout,
             timings: dict, cpu: dict) -> None:
    """Execute one notebook into ``out`` and record its wall and kernel CPU seconds."""
    import resource

    timings_path = out / "timings.json"
    ipynb = py.with_suffix(".ipynb")
    if not ipynb.exists():
        raise FileNotFoundError(f"{ipynb} is missing; run: python -m labkit.notebooks sync")
    declared = pm.inspect_notebook(str(ipynb))  # pass only what the notebook declares
    nb_params = {k: v for k, v in params.items() if k in declared}
    print(f"[notebooks] {ipynb.name} ...", flush=True)
    t = time.time()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    pm.execute_notebook(str(ipynb), str(out / ipynb.name), parameters=nb_params, kernel_name=kernel,
                        cwd=str(folder), progress_bar=False, log_output=log_output,
                        execution_timeout=timeout)
    timings[ipynb.stem] = round(time.time() - t, 1)
    # CPU seconds of the kernel (a finished child process): what the notebook costs on an idle machine.
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu[ipynb.stem] = round(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime, 1)
    print(f"[notebooks] {ipynb.name}: {timings[ipynb.stem]:.1f} s wall, {cpu[ipynb.stem]:.1f} s CPU", flush=True)
    timings_path.write_text(json.dumps({"parameters": params, "seconds": timings, "cpu_seconds": cpu,
                                        "total_s": round(sum(timings.values()), 1)}, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.notebooks", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute the notebooks in order (papermill) into a scratch folder")
    r.add_argument("--out", default="runs/notebooks", help="where the executed copies and timings.json go")
    r.add_argument("--data-dir", default="data/lab", help="DATA_DIR of every notebook (01 writes it)")
    r.add_argument("--run-dir", default="runs/lab", help="RUN_DIR of every notebook (03-06 train and evaluate there)")
    r.add_argument("--quick", action="store_true", help="the CI settings: a few samples and steps")
    r.add_argument("--gpu", action="store_true", help="SMALL=False: the GPU settings (InternVL3, paper recipes)")
    r.add_argument("--only", default=None, help="comma-separated numbers or names, e.g. 00,01")
    r.add_argument("--log-output", action="store_true", help="stream the notebooks' output to the console")
    c = sub.add_parser("check", help="pairs in sync, outputs stripped, one parameters cell, kernelspec set")
    c.add_argument("--folder", default=str(NOTEBOOK_DIR))
    s = sub.add_parser("sync", help="rewrite one side of every pair from the other (stripped)")
    s.add_argument("--from", dest="source", choices=("py", "ipynb"), default="py")
    sub.add_parser("strip", help="strip outputs of the notebooks in place")
    sub.add_parser("kernel", help="make sure the project's kernel exists; print its name")
    args = parser.parse_args(argv)
    if args.cmd == "run":
        os.chdir(ROOT)
        timings = run_notebooks(args.out, data_dir=args.data_dir, run_dir=args.run_dir, small=not args.gpu,
                                quick=args.quick, only=args.only.split(",") if args.only else None,
                                log_output=args.log_output)
        for name, s_ in timings.items():
            print(f"{name:24s} {s_:7.1f} s")
        print(f"{'total':24s} {sum(timings.values()):7.1f} s   (executed copies in {args.out})")
        return 0
    if args.cmd == "check":
        problems = check_notebooks(Path(args.folder))
        for p in problems:
            print(p)
        print("notebooks OK" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    if args.cmd == "sync":
        for p in sync_notebooks(source=args.source):
            print(f"wrote {p.relative_to(ROOT)}")
        return 0
    if args.cmd == "strip":
        import nbformat

        for py in notebook_scripts():
            ipynb = py.with_suffix(".ipynb")
            if ipynb.exists():
                nbformat.write(strip_notebook(nbformat.read(ipynb, as_version=4)), ipynb)
                print(f"stripped {ipynb.relative_to(ROOT)}")
        return 0
    if args.cmd == "kernel":
        print(ensure_kernel())
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
