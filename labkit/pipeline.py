"""The demo pipeline (`make demo`): every stage of the lab in small mode, then a report.

    python -m labkit demo --out runs/demo

Stages run in order and skip what is already done, so an interrupted demo resumes.
"""
from __future__ import annotations

import json
import time
from pathlib import Path


def run_demo(out: str | Path, seed: int = 0) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results = {"seed": seed, "arms": {}, "minutes": None}
    results["minutes"] = (time.time() - t0) / 60
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "report.html").write_text("<html><body><h1>labkit demo</h1><p>No stages yet.</p></body></html>\n")
    print(f"wrote {out / 'results.json'} and {out / 'report.html'}")
    return results
