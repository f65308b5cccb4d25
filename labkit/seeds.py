"""Seeds and spread: the arms of a recipe set over several seeds, with means and standard deviations.

    labkit ablate --recipe-set small --seeds 0,1,2 --out runs/seeds [--arms sft,grpo,...]

Each seed runs the set's arms with `labkit.ablate.Runner` into ``OUT/seed-S/`` (its own
``results.json``, ``report.html``, done markers and resume, as a single-seed run). All seeds share
one dataset, ``OUT/data``, synthesized once with the set's ``data.synth.seed`` (default 0): the seeds
vary the model's initialisation, the training order and the sampling, while the test split stays
the same, so the arms are compared on the same samples and the spread is the training's.

``OUT/results.json`` then holds the aggregate (format: `labkit.report`'s docstring): per arm the
mean over the seeds where the arm finished of ``overall``, ``per_dimension`` and ``auc``, their
sample standard deviation (``std``, n - 1 in the denominator; None with a single seed) and every
seed's own numbers (``per_seed``). ``overall`` stays the mean score, so readers of a single-seed
results.json (the app picks the best arm by it) read the aggregate the same way.
``OUT/report.html`` shows the means with error bars.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from labkit.ablate import RecipeSet, Runner, load_recipe_set
from labkit.report import write_report

SCALAR_KEYS = ("overall", "random_baseline", "unparsed", "wall_s", "cpu_s", "train_s", "eval_s")
META_KEYS = ("kind", "tables", "description", "n", "conversion", "rule", "image_size", "params")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; a clear error for anything else (empty, repeated, not integers)."""
    try:
        seeds = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--seeds expects comma-separated integers such as 0,1,2, got {text!r}") from None
    if not seeds:
        raise ValueError("--seeds needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds repeats a seed: {text!r}")
    return seeds


def mean_std(values) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the finite values (std None for fewer than two)."""
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    m = sum(vals) / len(vals)
    if len(vals) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def _dict_mean_std(dicts: list[dict]) -> tuple[dict, dict]:
    keys: list[str] = []
    for d in dicts:
        keys += [k for k in d if k not in keys]
    means, stds = {}, {}
    for k in keys:
        means[k], stds[k] = mean_std([d.get(k) for d in dicts])
    return means, stds


def _auc_part(auc: dict | None) -> dict | None:
    if not auc:
        return None
    return {k: auc.get(k) for k in ("overall", "first", "per_dimension", "n")}


def aggregate(per_seed: dict[int, dict], seeds: list[int]) -> dict:
    """The multi-seed results dict from each seed's results.json (keyed by seed)."""
    arm_names: list[str] = []
    for s in seeds:
        arm_names += [a for a in (per_seed.get(s) or {}).get("arms", {}) if a not in arm_names]
    arms = {}
    for name in arm_names:
        runs = {s: per_seed[s]["arms"][name] for s in seeds if name in (per_seed.get(s) or {}).get("arms", {})}
        rows = list(runs.values())
        first_seed = next(iter(runs))
        out = {k: rows[0].get(k) for k in META_KEYS if k in rows[0]}
        std: dict = {}
        for k in SCALAR_KEYS:
            out[k], std[k] = mean_std([r.get(k) for r in rows])
        out["per_dimension"], std["per_dimension"] = _dict_mean_std([r.get("per_dimension") or {} for r in rows])
        out["random_per_dimension"], _ = _dict_mean_std([r.get("random_per_dimension") or {} for r in rows])
        aucs = [r["auc"] for r in rows if r.get("auc")]
        if aucs:
            out["auc"], std["auc"] = {}, {}
            for k in ("overall", "first"):
                out["auc"][k], std["auc"][k] = mean_std([a.get(k) for a in aucs])
            out["auc"]["per_dimension"], std["auc"]["per_dimension"] = _dict_mean_std([a.get("per_dimension") or {} for a in aucs])
            out["auc"]["n"] = aucs[0].get("n")
            out["auc"]["n_seeds"] = len(aucs)
        out["std"] = std
        out["n_seeds"] = len(rows)
        out["seeds"] = list(runs)
        out["dir"] = f"seed-{first_seed}/{rows[0].get('dir', name)}"  # the first seed's folder: its predictions, curves
        out["model"] = rows[0].get("model")
        out["per_seed"] = {str(s): {"overall": r.get("overall"), "per_dimension": r.get("per_dimension"),
                                    "auc": _auc_part(r.get("auc")), "unparsed": r.get("unparsed"), "wall_s": r.get("wall_s"),
                                    "dir": f"seed-{s}/{r.get('dir', name)}"} for s, r in runs.items()}
        arms[name] = out
    first = next((per_seed[s] for s in seeds if per_seed.get(s)), {})
    mining = dict(first.get("mining") or {}) or None
    if mining:
        first_seed = next(s for s in seeds if per_seed.get(s))
        mining["dir"] = f"seed-{first_seed}/{mining.get('dir', 'mine')}"
    return {
        "recipe_set": first.get("recipe_set"), "recipe_set_file": first.get("recipe_set_file"),
        "seed": None, "seeds": list(seeds), "data": first.get("data"), "evaluation": first.get("evaluation"),
        "arms": arms, "mining": mining,
        "minutes": sum((per_seed.get(s) or {}).get("minutes") or 0 for s in seeds),
        "per_seed_results": {str(s): f"seed-{s}/results.json" for s in seeds if per_seed.get(s)},
    }


def read_seed_results(out, seeds: list[int]) -> dict[int, dict]:
    """Each seed's ``OUT/seed-S/results.json`` that exists, keyed by seed."""
    found = {}
    for s in seeds:
        path = Path(out) / f"seed-{s}" / "results.json"
        if path.exists():
            found[s] = json.loads(path.read_text())
    return found


def write_aggregate(out, results: dict, title: str) -> Path:
    """``OUT/results.json`` (atomically) and ``OUT/report.html``."""
    import os

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
    os.replace(tmp, out / "results.json")
    return write_report(out, results, title=title)


def run_seeds(recipe_set, out, seeds: list[int], *, arms: list[str] | None = None, evaluation: dict | None = None,
              progress: bool = True, report_only: bool = False) -> dict:
    """Run the set's arms once per seed into ``OUT/seed-S`` and write the aggregate; returns it."""

    rs = recipe_set if isinstance(recipe_set, RecipeSet) else load_recipe_set(recipe_set)
    out = Path(out)
    data_dir = out / "data"
    data_seed = int((rs.data.get("synth") or {}).get("seed", 0))
    if rs.data.get("dir") and "{run_dir}" not in str(rs.data["dir"]):
        data_dir = Path(rs.data["dir"])  # a fixed dataset folder: every seed uses it as it is
    t0 = time.time()
    if not report_only:
        for s in seeds:
            print(f"\n##### seed {s} ({seeds.index(s) + 1} of {len(seeds)}) #####", flush=True)
            runner = Runner(rs, out / f"seed-{s}", seed=s, progress=progress, evaluation=evaluation,
                            data_dir=data_dir, data_seed=data_seed)
            runner.run(arms)
    per_seed = read_seed_results(out, seeds)
    if not per_seed:
        raise FileNotFoundError(f"no seed-S/results.json under {out} for seeds {seeds}")
    results = aggregate(per_seed, seeds)
    results["data_seed"] = data_seed
    if not report_only:
        results["minutes_this_run"] = (time.time() - t0) / 60
    write_aggregate(out, results, title=f"HCM-GRPO lab: recipe set {rs.name}, seeds {', '.join(map(str, seeds))}")
    return results


def seeds_table(results: dict) -> str:
    """A plain-text table: per arm the mean ± std of the score and the per-candidate AUC, and each seed's score."""
    def pm(m, s, nd=1):
        if m is None:
            return "-"
        return f"{m:.{nd}f}" + (f" ± {s:.{nd}f}" if s is not None else "")

    lines = [("arm", "seeds", "overall", "random", "AUC", "per seed")]
    for name, r in results["arms"].items():
        auc, auc_std = (r.get("auc") or {}).get("overall"), ((r.get("std") or {}).get("auc") or {}).get("overall")
        per = ", ".join("-" if v.get("overall") is None else f"{v['overall']:.1f}" for v in (r.get("per_seed") or {}).values())
        lines.append((name, str(r.get("n_seeds", 1)), pm(r.get("overall"), (r.get("std") or {}).get("overall")),
                      pm(r.get("random_baseline"), None), pm(auc, auc_std, 3), per))
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    text = "\n".join("  ".join(c.ljust(w) if i in (0, 5) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     for row in lines)
    print(text)
    return text
