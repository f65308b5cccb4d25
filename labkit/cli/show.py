"""`labkit show DIR --id ID --out sheet.png`: a sample sheet (original and A–D with the answer,
dimension and per-candidate defect tags, plus the finer defect kinds of synthetic samples)."""
from __future__ import annotations

import json
from pathlib import Path


def register(sub):
    p = sub.add_parser("show", help="render one sample as a labelled PNG sheet", description=__doc__)
    p.add_argument("dataset", help="dataset folder")
    p.add_argument("--id", required=True, help="sample id, e.g. test-000003")
    p.add_argument("--out", default=None, help="PNG to write (default: ID.png)")
    p.add_argument("--tile", type=int, default=256, help="tile side in pixels")
    p.add_argument("--text", action="store_true", help="also print the sample's caption and CoT")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def find_sample(root, sample_id: str) -> dict:
    """The sample with this id from any split (image cells as stored: PNG bytes).

    Reads only the ``id`` column of each file, then the one row group holding the sample, so
    a large split is never loaded whole."""
    import pyarrow.parquet as pq

    from labkit.data import SPLITS, _split_files, list_splits

    root = Path(root)
    if not list_splits(root):
        raise FileNotFoundError(f"no dataset splits (*.parquet) in {str(root)!r}")
    for split in SPLITS:
        for f in _split_files(root, split):
            pf = pq.ParquetFile(f)
            ids = pf.read(columns=["id"]).column("id").to_pylist()
            if sample_id not in ids:
                continue
            row = ids.index(sample_id)
            for g in range(pf.num_row_groups):
                n = pf.metadata.row_group(g).num_rows
                if row < n:
                    return pf.read_row_group(g).slice(row, 1).to_pylist()[0]
                row -= n
    raise KeyError(f"no sample with id {sample_id!r} in {str(root)!r}")


def render_sheet(sample: dict, tile: int = 256):
    """Original + A-D side by side, each titled with its verdict and defect tags/kinds."""
    from PIL import Image, ImageDraw

    from labkit.conversions import _font
    from labkit.data import DIMENSION_SHORT, open_image
    from labkit.metrics import LETTERS

    sid = sample["id"]
    meta = json.loads(sample.get("meta") or "{}")
    truth = meta.get("truth", {})
    answer = sample.get("answer") or truth.get("answer")
    dimension = sample.get("dimension") or truth.get("dimension")
    tags = sample.get("candidate_defects") or truth.get("candidate_defects")
    # Finer defect kinds: only labkit.synth's meta has them; other sources show the tags alone.
    cand_meta = meta.get("candidates") if isinstance(meta.get("candidates"), list) else []
    kinds = [[k for k in (c.get("defects") or []) if isinstance(k, dict) and "kind" in k] if isinstance(c, dict) else []
             for c in cand_meta[:4]]
    kinds += [[] for _ in range(4 - len(kinds))]
    images = [open_image(sample["original"], sid, "original")] + [open_image(c, sid, f"candidate {l}") for l, c in zip(LETTERS, sample["candidates"])]
    head, foot = 34, 64
    sheet = Image.new("RGB", (5 * tile + 6 * 6, head + tile + foot + 12), "white")
    d = ImageDraw.Draw(sheet)
    unlabelled = " (unlabelled; truth from meta)" if sample.get("answer") is None and truth else ""
    d.text((6, 6), f"{sid}   answer: {answer}   dimension: {dimension}{unlabelled}", fill="black", font=_font(18))
    small = _font(12)
    for i, img in enumerate(images):
        x = 6 + i * (tile + 6)
        # Upscaling keeps pixels crisp; downscaling averages so thin text stays legible.
        resample = Image.NEAREST if tile >= img.size[0] else Image.LANCZOS
        sheet.paste(img.resize((tile, tile), resample), (x, head))
        if i == 0:
            d.text((x, head + tile + 4), "Original", fill="black", font=_font(16))
            continue
        t = tags[i - 1] if tags is not None else None
        ok = t is not None and not t
        colour = (0, 130, 0) if ok else ((190, 0, 0) if t else (90, 90, 90))
        verdict = "acceptable" if ok else ("defective" if t else "?")
        d.rectangle([x - 3, head - 3, x + tile + 2, head + tile + 2], outline=colour, width=3)
        d.text((x, head + tile + 4), f"{LETTERS[i - 1]}: {verdict}", fill=colour, font=_font(16))
        # One line per defect: the finer kind and its severity (1 = obvious), then the dimension tag.
        lines = [f"{k['kind']} {k.get('severity', 0):.2f} ({DIMENSION_SHORT.get(k.get('dimension'), k.get('dimension'))})"
                 for k in kinds[i - 1]] \
            if kinds[i - 1] else ([", ".join(t)] if t else [])
        for j, line in enumerate(lines[:3]):
            while line and small.getlength(line) > tile:
                line = line[:-1]
            d.text((x, head + tile + 24 + 13 * j), line, fill=colour, font=small)
    return sheet


def run(args) -> int:
    import sys

    from labkit.data import SampleError, validate_sample

    sample = find_sample(args.dataset, args.id)
    try:
        validate_sample(sample, check_images=False)  # images: drawing them below fails with a clear error
    except SampleError as exc:
        print(f"labkit show: warning: invalid sample: {exc}", file=sys.stderr)
    out = Path(args.out or f"{args.id}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    render_sheet(sample, args.tile).save(out)
    if args.text:
        for what in ("caption", "cot"):
            if sample.get(what):
                print(f"{what}:\n{sample[what]}\n")
    print(f"wrote {out}")
    return 0
