"""The ablation runner: every arm of a recipe set, evaluated the same way, into one report.

    labkit ablate --recipe-set small --out runs/ablation [--arms hcm-grpo,dpa-grpo] [--seed 0]

A recipe set (``recipes/sets/NAME.yaml``) lists the setup and the arms, in an order where every
arm comes after the arms it needs::

    name: small
    data: {dir: "{run_dir}/data", synth: {train: 64, test: 60, size: 64}}   # synthesized if missing
    base: {dir: "{run_dir}/base", build: {arch: internvl, size: small}}    # built if missing
    evaluation: {split: test, batch_size: 16, max_new_tokens: 160}
    arms:
      - {name: base-cot, kind: eval, model: "{run_dir}/base", conversion: {form: cot}, tables: [4]}
      - {name: sft, recipe: recipes/small/sft.yaml, set: {model: "{run_dir}/base"}, tables: [4, 6]}
      - {name: mine, kind: mine, model: "{run_dir}/sft/final", needs: [sft]}
      - {name: hcm-grpo, recipe: recipes/small/hcm-grpo.yaml, needs: [sft, mine], tables: [6, 7]}

Arm kinds: ``train`` (the default when ``recipe`` is given: SFT or GRPO through `labkit.sft` /
`labkit.grpo` / `labkit.hcm`, then evaluated), ``eval`` (evaluate an existing model), ``mine``
(`labkit.hcm.mine_hard` on the training split), ``baseline`` (the discriminative CNN of
`labkit.baseline`; ``recipe`` is its settings YAML, ``set`` overrides them; trained on the set's
training split and scored on the same evaluation split with the same metric; it has no VLM
model, so tools that load an arm's model skip it). Every recipe gets the overrides
``run_dir=OUT``, ``arm=NAME`` (so it trains into ``OUT/NAME``), ``data``, ``seed``, plus the arm's
own ``set`` (dotted keys). Every scored arm is evaluated by `labkit.evaluate.evaluate` on the
same split with the arm's conversion (form, layout, variant, image size) and the set's
generation settings.

Outputs in OUT: ``results.json`` (per arm: overall, per_dimension, random_baseline, n, unparsed,
auc (per-candidate AUC, where the arm has one), wall_s, train_s, eval_s, kind, tables, dir; plus
``mining`` counts; several seeds: `labkit.seeds` and the format in `labkit.report`), ``report.html``
(`labkit.report`), and per arm ``OUT/NAME/done.json``: the arm's result, the marker that it is
finished. A rerun skips arms with a marker; an arm without one continues: a trained model
(``final/``) is only evaluated, otherwise training resumes from the last ``checkpoint-*``
(recipe ``resume: true``), and the evaluator skips the samples it already predicted.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.baseline import load_config, train_baseline
from labkit.metrics import format_table
from labkit.recipes import check_recipes, load_recipe, resolve_recipe_path
from labkit.stages import run_stage

ARM_KINDS = ("train", "eval", "mine", "baseline")
RECIPE_SETS_DIR = Path(__file__).resolve().parent.parent / "recipes" / "sets"


@dataclass
class Arm:
    """One arm of a recipe set."""

    name: str = field(metadata={"help": "arm name; also its folder OUT/NAME"})
    kind: str = field(default="train", metadata={"help": "train | eval | mine | baseline"})
    recipe: str | None = field(default=None, metadata={"help": "recipe YAML (train and baseline arms)"})
    model: str | None = field(default=None, metadata={"help": "model folder (eval and mine arms); may use {run_dir}"})
    conversion: dict = field(default_factory=dict, metadata={"help": "form/layout/variant/image_size for eval and mine arms"})
    set: dict = field(default_factory=dict, metadata={"help": "recipe overrides, dotted keys"})
    needs: list[str] = field(default_factory=list, metadata={"help": "arms that must finish first"})
    tables: list[int] = field(default_factory=list, metadata={"help": "paper tables this arm belongs to"})
    rows: dict = field(default_factory=dict, metadata={"help": "the row this arm fills in a paper table, by table "
                                                              "number, e.g. {5: all} (the paper's row names)"})
    limit: int | None = field(default=None, metadata={"help": "mine arms: only the first N training samples (match the GRPO recipes' limit)"})
    description: str = field(default="", metadata={"help": "what the arm is"})


@dataclass
class RecipeSet:
    name: str
    arms: list[Arm]
    data: dict = field(default_factory=dict)
    base: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    description: str = ""
    source: str = ""

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(f"recipe set {self.name!r} has no arm {name!r}; arms: {', '.join(a.name for a in self.arms)}")


def resolve_set_path(name_or_path) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    cand = RECIPE_SETS_DIR / f"{name_or_path}.yaml"
    if cand.exists():
        return cand
    known = sorted(x.stem for x in RECIPE_SETS_DIR.glob("*.yaml"))
    raise FileNotFoundError(f"no recipe set {str(name_or_path)!r} (known: {', '.join(known)}; or give a YAML path)")


def load_recipe_set(name_or_path) -> RecipeSet:
    """Parse and check a recipe set: arm kinds, unique names, dependencies defined earlier."""
    import yaml

    path = resolve_set_path(name_or_path)
    raw = yaml.safe_load(path.read_text()) or {}
    where = str(path)
    unknown = set(raw) - {"name", "arms", "data", "base", "evaluation", "description"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    arms, seen = [], set()
    arm_keys = set(Arm.__dataclass_fields__)
    for i, a in enumerate(raw.get("arms") or []):
        if not isinstance(a, dict) or "name" not in a:
            raise ValueError(f"{where}: arm #{i + 1} needs a name")
        bad = set(a) - arm_keys
        if bad:
            raise ValueError(f"{where}: arm {a['name']!r}: unknown key(s) {', '.join(sorted(bad))}")
        arm = Arm(**a)
        if arm.kind not in ARM_KINDS:
            raise ValueError(f"{where}: arm {arm.name!r}: kind must be one of {', '.join(ARM_KINDS)}")
        bad_rows = [t for t in arm.rows if t not in arm.tables]
        if bad_rows:
            raise ValueError(f"{where}: arm {arm.name!r}: rows name table(s) {bad_rows} that are not in its tables {arm.tables}")
        if arm.kind in ("train", "baseline") and not arm.recipe:
            raise ValueError(f"{where}: arm {arm.name!r}: a {arm.kind} arm needs a recipe")
        if arm.kind in ("eval", "mine") and not arm.model:
            raise ValueError(f"{where}: arm {arm.name!r}: an {arm.kind} arm needs a model")
        if arm.name in seen:
            raise ValueError(f"{where}: arm {arm.name!r} appears twice")
        for dep in arm.needs:
            if dep not in seen:
                raise ValueError(f"{where}: arm {arm.name!r} needs {dep!r}, which is not an earlier arm")
        if arm.recipe:  # found from the set's folder or the project, not the working directory
            arm.recipe = str(resolve_recipe_path(arm.recipe, [path.parent], what=f"{where}: arm {arm.name!r}"))
        seen.add(arm.name)
        arms.append(arm)
    if not arms:
        raise ValueError(f"{where}: no arms")
    return RecipeSet(name=raw.get("name", path.stem), arms=arms, data=raw.get("data") or {}, base=raw.get("base") or {},
                     evaluation=raw.get("evaluation") or {}, description=raw.get("description", ""), source=where)


def select_arms(rs: RecipeSet, names: list[str] | None) -> list[Arm]:
    """The arms to run, in set order: ``names`` and everything they need (all arms if None)."""
    if not names:
        return list(rs.arms)
    want: set[str] = set()

    def add(n):
        if n in want:
            return
        want.add(n)
        for d in rs.arm(n).needs:
            add(d)

    for n in names:
        add(n)
    return [a for a in rs.arms if a.name in want]


def _fmt(text, run_dir: Path):
    return text.replace("{run_dir}", str(run_dir)) if isinstance(text, str) else text


def load_arm_recipe(arm: Arm, run_dir: Path, data_dir: Path, seed: int):
    overrides: dict[str, Any] = {"run_dir": str(run_dir), "arm": arm.name, "data": str(data_dir), "seed": seed}
    overrides.update({k: _fmt(v, run_dir) for k, v in arm.set.items()})
    return load_recipe(arm.recipe, overrides)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


class Runner:
    """Runs the arms of a recipe set into ``out`` (see the module docstring)."""

    def __init__(self, recipe_set: RecipeSet, out, *, seed: int = 0, progress: bool = True, evaluation: dict | None = None,
                 data_dir=None, data_seed: int | None = None):
        self.rs = recipe_set
        self.out = Path(out)
        self.seed = seed
        self.progress = progress
        self.evaluation = {"split": "test", "batch_size": 8}
        self.evaluation.update(recipe_set.evaluation)
        self.evaluation.update(evaluation or {})
        # data_dir / data_seed: several seeds' runners share one dataset (`labkit.seeds`).
        self.data_dir = Path(data_dir) if data_dir else Path(_fmt(recipe_set.data.get("dir", "{run_dir}/data"), self.out))
        self.data_seed = data_seed
        self.results_path = self.out / "results.json"

    # ------------------------------------------------------------------ setup
    def setup(self) -> dict:
        """Synthesize the data and build the base model if the set asks and they are missing."""
        times = {}
        self.out.mkdir(parents=True, exist_ok=True)
        synth = self.rs.data.get("synth")
        have_data = (self.data_dir / "dataset.json").exists() or any(self.data_dir.glob("*.parquet")) or any(
            self.data_dir.glob("*/*.parquet"))
        if synth and not have_data:
            from labkit.synth import make_dataset

            t = time.time()
            kw = dict(synth)
            kw.setdefault("seed", self.seed if self.data_seed is None else self.data_seed)
            make_dataset(self.data_dir, **kw)
            times["data_s"] = time.time() - t
        elif not self.data_dir.exists():
            raise FileNotFoundError(f"data folder {self.data_dir} does not exist and the recipe set has no data.synth")
        pretrained = self.rs.base.get("pretrained")
        if pretrained:
            # The lab's pretrained small VLM (`labkit pretrain`): made once into its cache, copied per run.
            base_dir = Path(_fmt(self.rs.base.get("dir", "{run_dir}/base"), self.out))
            if not (base_dir / "config.json").exists():
                from labkit.pretrain import PretrainConfig, pretrained_cache, run_pretrain

                cache = pretrained_cache(pretrained.get("cache"))
                cfg = PretrainConfig(**{k: v for k, v in pretrained.items() if k != "cache"})
                t = time.time()
                if not (cache / "labkit_model.json").exists() or "pretrained" not in json.loads(
                        (cache / "labkit_model.json").read_text()):
                    run_pretrain(cache, cfg, progress=self.progress)
                    times["pretrain_s"] = time.time() - t
                shutil.copytree(cache, base_dir, ignore=shutil.ignore_patterns("stages"), dirs_exist_ok=True)
                times["base_s"] = time.time() - t
        build = self.rs.base.get("build")
        if build and not pretrained:
            base_dir = Path(_fmt(self.rs.base.get("dir", "{run_dir}/base"), self.out))
            if not (base_dir / "config.json").exists():
                from labkit.models import build_model

                t = time.time()
                build_model(build.get("arch", "internvl"), build.get("size", "small"), base_dir, seed=build.get("seed", self.seed))
                times["base_s"] = time.time() - t
        # Kept on disk so a resumed run still counts the setup in results.json's minutes.
        setup_path = self.out / "setup.json"
        saved = json.loads(setup_path.read_text()) if setup_path.exists() else {}
        saved.update(times)
        setup_path.write_text(json.dumps(saved, indent=2) + "\n")
        return saved

    # ------------------------------------------------------------------ arms
    def evaluate_model(self, model, conversion: dict, out_dir: Path) -> dict:
        from labkit.evaluate import evaluate

        ev = dict(self.evaluation)
        split = ev.pop("split", "test")
        swap_arms = ev.pop("swap_control", [])
        conv = {"form": "cot", "layout": "separate", "variant": "train", "image_size": None, "prompt": "full"}
        conv.update({k: v for k, v in conversion.items() if k in conv})
        res = evaluate(str(model), self.data_dir, split, out_dir=out_dir, seed=self.seed, progress=self.progress, **conv, **ev)
        res = {k: v for k, v in res.items() if k not in ("predictions_path",)}
        res["conversion"] = conv
        if out_dir.parent.name in swap_arms and "auc" in res:
            # The image-swap control: each sample's images replaced by the next sample's. What is
            # left of the verdict AUC comes from the text; the gap to `auc` is what comes from vision.
            swap = evaluate(str(model), self.data_dir, split, out_dir=out_dir.parent / "eval-swap", seed=self.seed,
                            progress=self.progress, swap_images=True, **conv, **ev)
            res["swap_auc"] = swap.get("auc")
            res["swap_overall"] = swap["overall"]
        return res

    def run_train(self, arm: Arm, arm_dir: Path) -> dict:
        recipe = load_arm_recipe(arm, self.out, self.data_dir, self.seed)
        if Path(recipe.output_dir).resolve() != arm_dir.resolve():
            raise ValueError(f"arm {arm.name!r}: recipe output_dir {recipe.output_dir} is not {arm_dir}; "
                             "keep output_dir at its default '{run_dir}/{arm}'")
        t = time.time()
        train_done = (recipe.final_dir / "labkit_train.json").exists()
        if not train_done:
            recipe.resume = True  # continues from the last checkpoint-* if one exists
            run_stage(recipe)
        train_s = time.time() - t
        conv = {"form": recipe.conversion.form, "layout": recipe.conversion.layout,
                "variant": recipe.conversion.variant, "image_size": recipe.conversion.image_size,
                "prompt": recipe.conversion.prompt}
        conv.update(arm.conversion)
        t = time.time()
        res = self.evaluate_model(recipe.final_dir, conv, arm_dir / "eval")
        res.update(train_s=train_s, eval_s=time.time() - t, model=str(recipe.final_dir), stage=recipe.stage,
                   recipe=str(arm.recipe))
        return res

    def run_eval(self, arm: Arm, arm_dir: Path) -> dict:
        t = time.time()
        res = self.evaluate_model(_fmt(arm.model, self.out), arm.conversion, arm_dir / "eval")
        res.update(train_s=0.0, eval_s=time.time() - t, model=_fmt(arm.model, self.out))
        return res

    def run_baseline(self, arm: Arm, arm_dir: Path) -> dict:
        cfg = load_config(arm.recipe, {"seed": self.seed, **{k: _fmt(v, self.out) for k, v in arm.set.items()}})
        res = train_baseline(self.data_dir, arm_dir, cfg, split=self.evaluation.get("split", "test"),
                             limit=self.evaluation.get("limit"), progress=self.progress)
        res.update(model=str(arm_dir / "model.safetensors"), recipe=str(arm.recipe))
        return res

    def run_mine(self, arm: Arm, arm_dir: Path) -> dict:
        from labkit.hcm import mine_hard

        t = time.time()
        ev = {k: v for k, v in self.evaluation.items() if k not in ("split", "swap_control")}
        if arm.limit is not None:
            ev["limit"] = arm.limit
        conv = {"form": "cot", "layout": "separate", "variant": "train", "image_size": None, "prompt": "full"}
        conv.update(arm.conversion)
        summary = mine_hard(_fmt(arm.model, self.out), self.data_dir, "train", arm_dir, seed=self.seed,
                            progress=self.progress, **conv, **ev)
        summary.update(eval_s=time.time() - t, train_s=0.0)
        return summary

    def run_arm(self, arm: Arm) -> dict:
        arm_dir = self.out / arm.name
        marker = arm_dir / "done.json"
        if marker.exists():
            return json.loads(marker.read_text())
        for dep in arm.needs:
            if not (self.out / dep / "done.json").exists():
                raise RuntimeError(f"arm {arm.name!r} needs {dep!r}, which has not finished")
        arm_dir.mkdir(parents=True, exist_ok=True)
        print(f"\n=== arm {arm.name} ({arm.kind}) ===", flush=True)
        t, cpu = time.time(), time.process_time()
        run = {"train": self.run_train, "eval": self.run_eval, "mine": self.run_mine, "baseline": self.run_baseline}[arm.kind]
        res = run(arm, arm_dir)
        # cpu_s: this process's CPU time (all threads); with other jobs on the machine wall_s grows, cpu_s much less.
        res.update(kind=arm.kind, tables=list(arm.tables), dir=arm.name, wall_s=time.time() - t, cpu_s=time.process_time() - cpu,
                   description=arm.description, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        marker.write_text(json.dumps(res, indent=2, default=str) + "\n")
        return res

    # ------------------------------------------------------------------ whole run
    def run(self, names: list[str] | None = None, *, report: bool = True) -> dict:
        t0 = time.time()
        check_recipes({a.name: (lambda a=a: load_arm_recipe(a, self.out, self.data_dir, self.seed))
                       for a in select_arms(self.rs, names) if a.recipe and a.kind == "train"})  # fail fast, before any arm runs
        setup = self.setup()
        results = self.collect()
        results["setup"] = setup
        results["uptime_start"] = _uptime()
        for arm in select_arms(self.rs, names):
            self.run_arm(arm)
            results = self.collect(results)  # results.json after every arm: an interruption keeps what is done
            results["minutes_this_run"] = (time.time() - t0) / 60
            self.write(results, report=False)
        results["uptime_end"] = _uptime()
        results["minutes_this_run"] = (time.time() - t0) / 60
        self.write(results, report=report)
        return results

    def collect(self, base: dict | None = None) -> dict:
        """results.json content from the done markers of the set's arms."""
        results = dict(base or {})
        results.update(recipe_set=self.rs.name, recipe_set_file=self.rs.source, seed=self.seed,
                       data=str(self.data_dir), evaluation=self.evaluation, arms={}, mining=None)
        for arm in self.rs.arms:
            marker = self.out / arm.name / "done.json"
            if not marker.exists():
                continue
            res = json.loads(marker.read_text())
            if arm.kind == "mine":
                results["mining"] = {k: res.get(k) for k in ("n", "hard", "easy", "hard_fraction", "unparsed", "split", "model", "wall_s", "cpu_s")}
                results["mining"]["dir"] = arm.name
                continue
            results["arms"][arm.name] = {k: res.get(k) for k in (
                "overall", "per_dimension", "random_baseline", "random_per_dimension", "n", "unparsed", "auc", "wall_s", "cpu_s",
                "train_s", "eval_s", "kind", "tables", "dir", "model", "description", "conversion", "top1", "swap_auc",
                "swap_overall")}
            if arm.kind == "baseline":
                results["arms"][arm.name].update({k: res.get(k) for k in ("rule", "threshold", "train_score", "image_size", "params")})
        setup = results.get("setup") or {}
        results["minutes"] = (sum((r.get("wall_s") or 0) for r in results["arms"].values())
                              + ((results["mining"] or {}).get("wall_s") or 0) + sum(setup.values())) / 60
        return results

    def write(self, results: dict, report: bool = True) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.results_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
        os.replace(tmp, self.results_path)
        if report:
            from labkit.report import write_report

            write_report(self.out, results, title=f"HCM-GRPO lab: recipe set {self.rs.name}")


def run_ablation(recipe_set, out, *, arms: list[str] | None = None, seed: int = 0, evaluation: dict | None = None,
                 progress: bool = True) -> dict:
    """Run (or finish) the arms of ``recipe_set`` into ``out``; returns the results dict."""
    rs = recipe_set if isinstance(recipe_set, RecipeSet) else load_recipe_set(recipe_set)
    return Runner(rs, out, seed=seed, evaluation=evaluation, progress=progress).run(arms)


def print_table(results: dict) -> str:
    rows = {a: r for a, r in results["arms"].items() if r.get("overall") is not None}
    text = format_table(rows)
    print(text)
    m = results.get("mining")
    if m:
        print(f"\nmined (SFT model on train): {m['hard']} hard, {m['easy']} easy of {m['n']}")
    return text
