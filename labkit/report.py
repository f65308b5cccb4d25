"""The ablation report: one self-contained ``report.html`` with plotly charts.

    python -m labkit.report runs/demo          # (re)writes runs/demo/report.html from results.json

`write_report(run_dir, results)` draws, from the ablation's ``results.json`` and the arm folders:

- ``fig-scores``: overall score per arm (bars) against the random baseline (a line); with several
  seeds the bars are the means and carry error bars (one standard deviation over the seeds);
- ``fig-dimensions``: per-dimension scores per arm (grouped bars, error bars with several seeds);
- ``fig-auc``: the per-candidate acceptable-vs-defective AUC per arm, overall and per dimension
  (error bars with several seeds; arms without an ``auc`` are left out);
- ``fig-rewards``: the mean reward per logged step of each GRPO arm (from ``train_log.jsonl``);
- ``fig-hard-easy``: the mined hard/easy counts and, per HCM arm, the hard and easy prompts drawn
  in each logical epoch (from ``hcm_epochs.jsonl``);
- a gallery of hard cases (the SFT model's reasoning, its answer, the label) with the five images as
  small inline data-URL thumbnails.

Each figure's JSON is embedded as ``<script type="application/json" id="fig-NAME">`` and drawn by
plotly.js, inlined once, so the page works offline and tests can read the numbers back. Arms of
kind ``baseline`` (the discriminative CNN, `labkit.baseline`) stand beside the VLM arms in every
table and chart.

results.json
------------
Single seed (`labkit.ablate.Runner`)::

    {"recipe_set": "small", "seed": 0, "data": ..., "evaluation": {...}, "minutes": 12.3,
     "mining": {"n", "hard", "easy", "dir", ...} | null,
     "arms": {"sft": {"overall": 41.0, "per_dimension": {dim: %}, "random_baseline": 34.2,
                      "random_per_dimension": {...}, "n": 100, "unparsed": 0,
                      "auc": {"overall", "first", "per_dimension": {dim: auc}, "n"} (absent if the arm has none),
                      "wall_s", "cpu_s", "train_s", "eval_s", "kind", "tables", "dir", "model", "description"}}}

Several seeds (`labkit.seeds`, ``labkit ablate --seeds 0,1,2``): the same keys, so readers that
pick the best arm by ``overall`` work unchanged, with ``overall``, ``per_dimension``, ``auc`` and
the timings now the **means** over the seeds, plus::

    "seed": null, "seeds": [0, 1, 2], "data_seed": 0, "per_seed_results": {"0": "seed-0/results.json", ...},
    "arms": {"sft": {..., "n_seeds": 3, "seeds": [0, 1, 2],
                     "std": {"overall", "per_dimension": {dim: sd}, "auc": {"overall", "first", "per_dimension"}, ...},
                     "per_seed": {"0": {"overall", "per_dimension", "auc", "unparsed", "wall_s", "dir"}, ...},
                     "dir": "seed-0/sft"}}

``std`` is the sample standard deviation (n - 1), None with one seed; ``dir`` is the first seed's
arm folder (its predictions and training curves are the ones drawn).
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from labkit.data import open_image
from labkit.jsonl import read_rows

FIGURES = ("scores", "dimensions", "auc", "rewards", "hard-easy")


def reward_curve(arm_dir: Path) -> tuple[list[int], list[float]]:
    """(steps, mean reward) from an arm's ``train_log.jsonl`` (empty if none)."""
    steps, rewards = [], []
    for row in read_rows(Path(arm_dir) / "train_log.jsonl"):
        if row.get("reward") is not None and "step" in row:
            steps.append(int(row["step"]))
            rewards.append(float(row["reward"]))
    return steps, rewards


def _std(r: dict, *path):
    """A standard deviation from an arm's ``std`` (None if absent: a single seed)."""
    v = r.get("std") or {}
    for p in path:
        v = (v or {}).get(p) if isinstance(v, dict) else None
    return v


def _error_bars(values: list) -> dict | None:
    """plotly ``error_y`` for a list of stds, or None when no value has one."""
    if all(v is None for v in values):
        return None
    return dict(type="data", array=[0 if v is None else v for v in values], visible=True)


def score_figure(results: dict):
    import plotly.graph_objects as go

    arms = [a for a, r in results["arms"].items() if r.get("overall") is not None]
    rows = [results["arms"][a] for a in arms]
    fig = go.Figure()
    fig.add_bar(x=arms, y=[r["overall"] for r in rows], name="score" if not results.get("seeds") else "mean score",
                error_y=_error_bars([_std(r, "overall") for r in rows]),
                text=[f"{r['overall']:.1f}" for r in rows], textposition="outside")
    fig.add_scatter(x=arms, y=[results["arms"][a]["random_baseline"] for a in arms], mode="lines+markers",
                    name="random baseline", line=dict(dash="dash", color="black"))
    fig.update_layout(title="Overall score per arm (%) vs the random baseline", yaxis_title="score (%)",
                      yaxis_range=[0, 105], height=420, margin=dict(t=50, b=120))
    return fig


def dimension_figure(results: dict):
    import plotly.graph_objects as go

    arms = [a for a, r in results["arms"].items() if r.get("per_dimension")]
    dims: list[str] = []
    for a in arms:
        for d in results["arms"][a]["per_dimension"]:
            if d not in dims:
                dims.append(d)
    fig = go.Figure()
    for a in arms:
        r = results["arms"][a]
        per = r["per_dimension"]
        fig.add_bar(x=dims, y=[per.get(d) for d in dims], name=a,
                    error_y=_error_bars([_std(r, "per_dimension", d) for d in dims]))
    fig.update_layout(barmode="group", title="Score per dimension (%)", yaxis_title="score (%)",
                      yaxis_range=[0, 105], height=420)
    return fig


def auc_figure(results: dict):
    """Per-candidate AUC per arm: one bar group per arm (overall, then each dimension), 0.5 = chance."""
    import plotly.graph_objects as go

    arms = [a for a, r in results["arms"].items() if (r.get("auc") or {}).get("overall") is not None]
    dims: list[str] = []
    for a in arms:
        dims += [d for d in results["arms"][a]["auc"].get("per_dimension") or {} if d not in dims]
    fig = go.Figure()
    for part in ("overall", *dims):
        ys, errs = [], []
        for a in arms:
            r = results["arms"][a]
            if part == "overall":
                ys.append(r["auc"].get("overall"))
                errs.append(_std(r, "auc", "overall"))
            else:
                ys.append((r["auc"].get("per_dimension") or {}).get(part))
                errs.append(_std(r, "auc", "per_dimension", part))
        fig.add_bar(x=arms, y=ys, name=part, error_y=_error_bars(errs))
    if arms:
        fig.add_scatter(x=arms, y=[0.5] * len(arms), mode="lines", name="chance", line=dict(dash="dash", color="black"))
    fig.update_layout(barmode="group", title="Per-candidate AUC (acceptable vs defective) per arm, overall and per dimension",
                      yaxis_title="AUC", yaxis_range=[0, 1.05], height=420, margin=dict(t=50, b=120))
    return fig


def reward_figure(run_dir: Path, results: dict):
    import plotly.graph_objects as go

    fig = go.Figure()
    for arm, r in results["arms"].items():
        steps, rewards = reward_curve(run_dir / r.get("dir", arm))
        if steps:
            fig.add_scatter(x=steps, y=rewards, mode="lines+markers", name=arm)
    fig.update_layout(title="Mean reward per logged step (GRPO arms)", xaxis_title="optimizer step",
                      yaxis_title="reward", height=400)
    return fig


def hard_easy_figure(run_dir: Path, results: dict):
    import plotly.graph_objects as go

    xs, hard, easy = [], [], []
    mining = results.get("mining") or {}
    if mining.get("n"):
        xs.append("mined (SFT on train)")
        hard.append(mining["hard"])
        easy.append(mining["easy"])
    for arm, r in results["arms"].items():
        for row in read_rows(run_dir / r.get("dir", arm) / "hcm_epochs.jsonl"):
            xs.append(f"{arm} e{row['epoch']} ({row['mix']})")
            hard.append(row["hard"])
            easy.append(row["easy"])
    fig = go.Figure()
    fig.add_bar(x=xs, y=hard, name="hard", marker_color="#d62728")
    fig.add_bar(x=xs, y=easy, name="easy", marker_color="#2ca02c")
    fig.update_layout(barmode="stack", title="Hard and easy cases: mined, and prompts drawn per logical epoch",
                      yaxis_title="prompts", height=450, margin=dict(b=160))
    return fig


def thumbnail(image, size: int = 64) -> str:
    """A PNG data URL of ``image`` shrunk to fit ``size`` px."""

    im = open_image(image).convert("RGB")
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def gallery_html(hard_cases_path: Path, data_dir, split: str = "train", limit: int = 8) -> str:
    """HTML cards of the first ``limit`` hard cases with thumbnails and the model's reasoning."""
    rows = [r for r in read_rows(Path(hard_cases_path)) if r.get("hard")][:limit]
    if not rows:
        return "<p>No hard cases mined.</p>"
    samples = {}
    if data_dir and Path(data_dir).exists():
        try:
            from labkit.data import load_split

            ds = load_split(data_dir, split, validate=False, check_images=False)
            want = {r["id"] for r in rows}
            for i, sid in enumerate(ds["id"]):
                if sid in want:
                    samples[sid] = ds[i]
        except Exception as exc:  # the gallery is a convenience; the report must still be written
            samples = {}
            print(f"report: no thumbnails ({exc})")
    cards = []
    for r in rows:
        imgs = ""
        s = samples.get(r["id"])
        if s is not None:
            labels = ["original", "A", "B", "C", "D"]
            pics = [s["original"], *s["candidates"]]
            imgs = "".join(
                f'<figure><img src="{thumbnail(p)}" alt="{lab}"><figcaption>{lab}</figcaption></figure>'
                for lab, p in zip(labels, pics))
        cards.append(
            f'<div class="card"><div class="imgs">{imgs}</div>'
            f'<p><b>{html.escape(str(r["id"]))}</b> · label <b>{html.escape(str(r["answer"]))}</b> · '
            f'model <b>{html.escape(str(r.get("prediction")))}</b> · {html.escape(str(r.get("dimension", "")))}</p>'
            f'<pre>{html.escape(str(r.get("response", ""))[:1200])}</pre></div>')
    return "\n".join(cards)


def top_answer(pred_path: Path) -> str:
    """The most common parsed answer of a predictions file and its share, e.g. "B (100%)": a model
    that gives one answer to everything scores the label prior, not what it sees."""
    from collections import Counter

    preds = [r.get("prediction") for r in read_rows(Path(pred_path))]
    if not preds:
        return "-"
    answer, count = Counter(preds).most_common(1)[0]
    return f"{answer} ({100 * count / len(preds):.0f}%)"


def _table_html(results: dict, table: int | None = None, run_dir: Path | None = None) -> str:
    seeds = bool(results.get("seeds"))
    head = ("<tr><th>arm</th><th>kind</th><th>overall</th><th>random</th><th>AUC</th><th>first-candidate AUC</th>"
            "<th>AUC, images swapped</th><th>top-1 rule</th><th>n</th><th>unparsed</th>"
            "<th>most common answer</th><th>minutes</th>" + ("<th>per seed</th>" if seeds else "") + "</tr>")
    body = []
    for arm, r in results["arms"].items():
        if table is not None and table not in (r.get("tables") or []):
            continue
        def f(x, nd=2):
            return "-" if x is None else f"{x:.{nd}f}"
        def pm(x, sd, nd=2):
            return f(x, nd) + ("" if sd is None or x is None else f" ± {sd:.{nd}f}")
        auc = (r.get("auc") or {}).get("overall")
        per_seed = ", ".join(f(v.get("overall"), 1) for v in (r.get("per_seed") or {}).values())
        body.append(f"<tr><td>{html.escape(arm)}</td><td>{html.escape(str(r.get('kind', '')))}</td>"
                    f"<td>{pm(r.get('overall'), _std(r, 'overall'))}</td><td>{f(r.get('random_baseline'))}</td>"
                    f"<td>{pm(auc, _std(r, 'auc', 'overall'), 3)}</td>"
                    f"<td>{pm((r.get('auc') or {}).get('first'), _std(r, 'auc', 'first'), 3)}</td>"
                    f"<td>{f((r.get('swap_auc') or {}).get('overall'), 3)}</td>"
                    f"<td>{f((r.get('top1') or {}).get('overall'), 1)}</td><td>{r.get('n', '-')}</td>"
                    f"<td>{f(r.get('unparsed'), 1) if isinstance(r.get('unparsed'), float) else r.get('unparsed', '-')}</td>"
                    f"<td>{html.escape(top_answer(run_dir / r.get('dir', arm) / 'eval' / 'predictions.jsonl')) if run_dir else '-'}</td>"
                    f"<td>{f((r.get('wall_s') or 0) / 60, 1)}</td>" + (f"<td>{per_seed}</td>" if seeds else "") + "</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def write_report(run_dir, results: dict | None = None, *, title: str = "HCM-GRPO lab report",
                 data_dir=None, gallery: int = 8) -> Path:
    """Write ``run_dir/report.html`` from ``results`` (default: ``run_dir/results.json``)."""
    from plotly.offline import get_plotlyjs

    run_dir = Path(run_dir)
    if results is None:
        path = run_dir / "results.json"
        if not path.exists():
            raise FileNotFoundError(f"no results.json in {run_dir}")
        results = json.loads(path.read_text())
    figs = {
        "scores": score_figure(results),
        "dimensions": dimension_figure(results),
        "auc": auc_figure(results),
        "rewards": reward_figure(run_dir, results),
        "hard-easy": hard_easy_figure(run_dir, results),
    }
    mining = results.get("mining") or {}
    hard_path = Path(mining["dir"]) / "hard_cases.jsonl" if mining.get("dir") else None
    if hard_path is not None and not hard_path.is_absolute():
        hard_path = run_dir / hard_path
    data_dir = data_dir or results.get("data")
    if data_dir and not Path(data_dir).is_absolute() and not Path(data_dir).exists():
        data_dir = run_dir / data_dir
    gallery_part = gallery_html(hard_path, data_dir, mining.get("split", "train"), gallery) if hard_path else "<p>No mining run.</p>"
    tables_part = ""
    for t, what in ((4, "the base model and the cold start"), (6, "RL from the SFT model"), (7, "data of the late epochs")):
        if any(t in (r.get("tables") or []) for r in results["arms"].values()):
            tables_part += f"<h3>Paper Table {t}: {what}</h3>" + _table_html(results, t, run_dir)
    seeds_note = ""
    if results.get("seeds"):
        seeds_note = (f"<p>Means over seeds {', '.join(map(str, results['seeds']))} (one dataset, data seed "
                      f"{results.get('data_seed', 0)}); ± and the error bars are one standard deviation over the seeds. "
                      "Each seed's own report: seed-S/report.html.</p>")
    fig_parts = []
    for name, fig in figs.items():
        fig_json = fig.to_json().replace("</", "<\\/")
        fig_parts.append(f'<div id="plot-{name}" class="plot"></div>\n'
                         f'<script type="application/json" id="fig-{name}">{fig_json}</script>')
    meta = {k: results.get(k) for k in ("recipe_set", "seed", "seeds", "minutes", "minutes_this_run", "uptime_start", "uptime_end")
            if k in results}
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td:first-child {{ text-align: left; }}
.card {{ border: 1px solid #ddd; border-radius: 6px; padding: 8px; margin: 8px 0; }}
.imgs {{ display: flex; gap: 6px; }} figure {{ margin: 0; text-align: center; font-size: 11px; }}
pre {{ white-space: pre-wrap; font-size: 12px; background: #f7f7f7; padding: 6px; }}
</style>
<script>{get_plotlyjs()}</script></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(json.dumps(meta))}</p>
<h2>Scores</h2>
<p><i>overall</i>: the paper's metric on the generated answers. <i>AUC</i>: how well the arm's own
P(ok) at each verdict ranks acceptable above defective candidates; <i>first-candidate AUC</i>: the
same for candidate A only, where no earlier verdict can leak into it; <i>AUC, images swapped</i>:
the image-swap control (each sample's images replaced by the next sample's; what is left comes from
the text, the gap from vision); <i>top-1 rule</i>: the metric for a fixed rule on the same
probabilities (the candidate with the highest P(ok), never N), beside the generated answers, not
instead of them.</p>
{_table_html(results, None, run_dir)}
{tables_part}
{seeds_note}
{fig_parts[0]}
{fig_parts[1]}
<h2>Per-candidate AUC</h2>
<p>How well each arm's scores rank acceptable candidates above defective ones (0.5 = chance): the VLM arms' P(ok) at
their verdicts, the CNN baseline's P(acceptable).</p>
{fig_parts[2]}
<h2>Training</h2>
{fig_parts[3]}
<h2>Hard cases</h2>
{fig_parts[4]}
<h3>Gallery: hard cases of the SFT model (training split)</h3>
{gallery_part}
<script>
for (const el of document.querySelectorAll('script[id^="fig-"]')) {{
  const fig = JSON.parse(el.textContent);
  Plotly.newPlot('plot-' + el.id.slice(4), fig.data, fig.layout, {{responsive: true}});
}}
</script>
</body></html>
"""
    out = run_dir / "report.html"
    out.write_text(page)
    return out


def read_figures(html_path) -> dict[str, dict]:
    """The plotly figure JSON embedded in a report, keyed by figure name (for tests and tools)."""
    import re

    text = Path(html_path).read_text()
    out = {}
    for m in re.finditer(r'<script type="application/json" id="fig-([\w-]+)">(.*?)</script>', text, re.S):
        out[m.group(1)] = json.loads(m.group(2).replace("<\\/", "</"))
    return out


if __name__ == "__main__":
    import sys

    print(write_report(sys.argv[1] if len(sys.argv) > 1 else "runs/demo"))
