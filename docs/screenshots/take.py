"""Take the app's screenshots for the docs: the Screen tab (a dataset sample screened by the
model) and the Annotate tab, in headless Debian chromium through Playwright.

    python docs/screenshots/take.py [--demo-dir runs/demo] [--out docs/screenshots] [--model DIR --data DIR]

By default it serves what ``labkit app`` would: the demo's best-scoring arm and its dataset
(`labkit.cli.app.best_demo_arm`, `find_demo_data`). ``--model``/``--data`` override them (e.g.
a tiny model to try the script). The app runs on 127.0.0.1 with a throwaway annotation store;
the screenshots are ``screen.png`` and ``annotate.png`` in ``--out``. Look at them before
committing: the model's name, score and any warning are in the title.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = os.environ.get("LABKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def serve_app(model: str, data: str, hard: str | None, info: dict | None, store: Path, max_new_tokens: int):
    from labkit.app.main import AppConfig, serve

    cfg = AppConfig(model=model, store=str(store), data=data, hard_cases=hard, hard_cases_optional=True, port=0,
                    max_new_tokens=max_new_tokens, prefill_cot=True, model_info=info)
    return serve(cfg, block=False)


def take(url: str, out: Path, sample: str | None = None, timeout_ms: int = 300_000) -> list[Path]:
    """Screen one dataset sample, then open the Annotate tab; a full-page screenshot of each."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots = [out / "screen.png", out / "annotate.png"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(url)
        page.wait_for_selector("#screen-btn", timeout=60_000)
        page.click("#screen-pick input")
        option = page.locator("li[role=option]" + (f":has-text('{sample}')" if sample else "")).first
        option.click()
        page.wait_for_function("document.querySelector('#screen-status').innerText.includes('Loaded sample')",
                               timeout=60_000)
        page.click("#screen-btn")
        page.wait_for_function("document.querySelector('#screen-status').innerText.includes('Done in')",
                               timeout=timeout_ms)
        page.screenshot(path=str(shots[0]), full_page=True)
        page.click("button[role=tab]:has-text('Annotate')")
        page.wait_for_function("(document.querySelector('#item-key input, #item-key textarea') || {}).value",
                               timeout=60_000)
        # Let the model's suggestion finish (or show the mined one) before the picture.
        page.wait_for_function("!document.querySelector('#suggestion-source').innerText.includes('writing')",
                               timeout=timeout_ms)
        page.screenshot(path=str(shots[1]), full_page=True)
        browser.close()
    return shots


def main(argv=None) -> int:
    from labkit.cli.app import best_demo_arm, find_demo_data, find_demo_hard_cases

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", default="runs/demo")
    ap.add_argument("--model", help="model folder (default: the demo's best arm)")
    ap.add_argument("--data", help="dataset folder (default: the demo's data)")
    ap.add_argument("--sample", help="dataset sample to screen (default: the first in the picker)")
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    ap.add_argument("--max-new-tokens", type=int, default=256)
    args = ap.parse_args(argv)
    demo_dir = Path(args.demo_dir)
    best = best_demo_arm(demo_dir) if demo_dir.is_dir() else None
    model = args.model or (str(best["model"]) if best else None)
    data = args.data or (str(d) if (d := find_demo_data(demo_dir)) else None)
    if not model or not data:
        print(f"no trained demo model or data in {demo_dir}: run `make demo`, or pass --model and --data",
              file=sys.stderr)
        return 2
    info = {k: best[k] for k in ("arm", "score", "random", "warning")} if best and not args.model else None
    hard = None if args.data else (str(h) if (h := find_demo_hard_cases(demo_dir)) else None)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        demo = serve_app(model, data, hard, info, Path(tmp) / "store.sqlite", args.max_new_tokens)
        try:
            for shot in take(demo.local_url, Path(args.out), args.sample):
                print(f"wrote {shot} ({shot.stat().st_size / 1024:.0f} KB)")
        finally:
            demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
