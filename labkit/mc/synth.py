"""Synthetic stand-ins for BLINK, MuirBench and RealWorldQA, written in their published schemas.

Offline machines (CI, the small-mode demo) cannot download the real benchmarks. This writes
Parquet files with the *published* layout, column names and types (see
`labkit.mc.sources`), filled with simple, learnable visual questions about coloured
shapes, so that ``labkit mc-prepare`` and the ``mc`` recipe set run end to end with
numbers that can move. The questions are the lab's own; only the schema is the benchmark's.

=============== =====================================================================
realworldqa     ``data/test-0000{0,1}-of-00002.parquet``: one image, "What colour is the
                shape?" with options inside the question text and the published
                instruction line; ~10 % free-form questions (answer a number), which the
                MC loader skips, as with the real set.
blink           ``Counting/`` (one image, how many shapes: "(A)".."(D)") and
                ``Visual_Similarity/`` (three images: which of the second/third has the
                first one's colour); ``val`` labelled, ``test`` with answers "hidden";
                unused ``image_k`` columns are None.
muirbench       ``data/test-00000-of-00001.parquet``: "Counting" (how many of two images
                show a red shape) and "Visual Retrieval" (which ``<image>`` option has the
                query's colour, or "None of the choices provided": options A-E), in
                answerable/unanswerable counterpart pairs.
=============== =====================================================================

Run ``labkit mc-synth --benchmark muirbench --out data/mc-src/muirbench --n 200 --seed 0``.
"""
from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30)}
RWQA_INSTRUCTION = "Please answer directly with only the letter of the correct option and nothing else."
OPEN_INSTRUCTION = "Please answer directly with a single word or number."


def _cell(img: Image.Image) -> dict:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def shapes_image(rng: random.Random, colours: list[str], size: int = 64) -> Image.Image:
    """A light background with one filled shape per colour, at random non-overlapping places."""
    img = Image.new("RGB", (size, size), tuple(rng.randint(225, 250) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    n = len(colours)
    cols = 2 if n > 1 else 1
    cell = size // cols
    slots = [(c * cell, r * cell) for r in range(cols) for c in range(cols)]
    rng.shuffle(slots)
    for colour, (x0, y0) in zip(colours, slots):
        r = rng.randint(cell // 4, cell // 3)
        cx, cy = x0 + cell // 2 + rng.randint(-2, 2), y0 + cell // 2 + rng.randint(-2, 2)
        box = [cx - r, cy - r, cx + r, cy + r]
        if rng.random() < 0.5:
            draw.ellipse(box, fill=COLOURS[colour])
        else:
            draw.rectangle(box, fill=COLOURS[colour])
    return img


def _write(rows: list[dict], features, path: Path) -> None:
    from datasets import Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=features).to_parquet(str(path))


def write_realworldqa(root, n: int = 100, seed: int = 0, size: int = 64) -> Path:
    from datasets import Features, Image as HFImage, Value

    rng = random.Random(f"rwqa/{seed}")
    names = list(COLOURS)
    rows = []
    for i in range(n):
        if rng.random() < 0.1:
            k = rng.randint(1, 3)
            img = shapes_image(rng, [rng.choice(names) for _ in range(k)], size)
            rows.append({"image": _cell(img), "question": f"How many shapes are there?\n{OPEN_INSTRUCTION}", "answer": str(k)})
            continue
        colour = rng.choice(names)
        options = rng.sample([c for c in names if c != colour], 2) + [colour]
        rng.shuffle(options)
        text = "What colour is the shape?\n" + "\n".join(f"{chr(65 + j)}. {o.capitalize()}" for j, o in enumerate(options))
        answer = chr(65 + options.index(colour))
        rows.append({"image": _cell(shapes_image(rng, [colour], size)), "question": f"{text}\n{RWQA_INSTRUCTION}",
                     "answer": answer if rng.random() < 0.8 else colour.capitalize()})  # some answers are words
    features = Features({"image": HFImage(), "question": Value("string"), "answer": Value("string")})
    root = Path(root)
    half = (len(rows) + 1) // 2
    _write(rows[:half], features, root / "data" / "test-00000-of-00002.parquet")
    _write(rows[half:], features, root / "data" / "test-00001-of-00002.parquet")
    return root


def _blink_features():
    from datasets import Features, Image as HFImage, List, Value

    return Features({
        "idx": Value("string"), "question": Value("string"), "sub_task": Value("string"),
        "image_1": HFImage(), "image_2": HFImage(), "image_3": HFImage(), "image_4": HFImage(),
        "choices": List(Value("string")), "answer": Value("string"), "prompt": Value("string"),
        "explanation": Value("string"),
    })


def write_blink(root, n: int = 100, seed: int = 0, size: int = 64, n_test: int = 4) -> Path:
    """``n`` val items split over two subtasks, plus ``n_test`` hidden-answer test items each."""
    rng = random.Random(f"blink/{seed}")
    names = list(COLOURS)
    root = Path(root)
    for task in ("Counting", "Visual_Similarity"):
        for split, count in (("val", n // 2), ("test", n_test)):
            rows = []
            for i in range(count):
                if task == "Counting":
                    k = rng.randint(1, 4)
                    images = [shapes_image(rng, [rng.choice(names) for _ in range(k)], size)]
                    question, choices, correct = "How many shapes are in the image?", ["1", "2", "3", "4"], k - 1
                else:
                    colour, other = rng.sample(names, 2)
                    correct = rng.randint(0, 1)
                    pair = [colour, other] if correct == 0 else [other, colour]
                    images = [shapes_image(rng, [colour], size)] + [shapes_image(rng, [c], size) for c in pair]
                    question = "Which image shows a shape of the same colour as the first image?"
                    choices = ["the second image", "the third image"]
                cells = [_cell(im) for im in images] + [None] * (4 - len(images))
                prompt = question + "\nSelect from the following choices.\n" + "\n".join(
                    f"({chr(65 + j)}) {c}" for j, c in enumerate(choices))
                rows.append({"idx": f"{split}_{task}_{i + 1}", "question": question, "sub_task": task.replace("_", " "),
                             "image_1": cells[0], "image_2": cells[1], "image_3": cells[2], "image_4": cells[3],
                             "choices": choices, "answer": f"({chr(65 + correct)})" if split == "val" else "hidden",
                             "prompt": prompt, "explanation": ""})
            if rows:
                _write(rows, _blink_features(), root / task / f"{split}-00000-of-00001.parquet")
    return root


def write_muirbench(root, n: int = 100, seed: int = 0, size: int = 64) -> Path:
    from datasets import Features, Image as HFImage, List, Value

    rng = random.Random(f"muir/{seed}")
    names = list(COLOURS)
    rows = []
    i = 0
    while len(rows) < n:
        if (i // 2) % 2 == 0:  # Counting: two images, how many show a red shape
            flags = [rng.random() < 0.5, rng.random() < 0.5]
            images = [shapes_image(rng, ["red" if f else rng.choice(names[1:])], size) for f in flags]
            rows.append({"idx": str(i), "task": "Counting", "image_relation": "Independent", "image_type": "Synthetic",
                         "question": "<image> <image> How many of these images show a red shape?",
                         "options": ["0", "1", "2"], "answer": "ABC"[sum(flags)], "image_list": [_cell(im) for im in images],
                         "counterpart_idx": None})
            i += 1
            continue
        # Visual Retrieval pair: the answerable item and its unanswerable counterpart (query colour removed).
        query, *others = rng.sample(names, 4)
        options = [query] + others[:3]
        rng.shuffle(options)
        images = [shapes_image(rng, [query], size)] + [shapes_image(rng, [c], size) for c in options]
        unanswerable = [shapes_image(rng, [query], size)] + [shapes_image(rng, [c if c != query else others[-1]], size)
                                                             for c in options]
        for j, (imgs, answer) in enumerate(((images, "ABCD"[options.index(query)]), (unanswerable, "E"))):
            rows.append({"idx": str(i + j), "task": "Visual Retrieval", "image_relation": "Similar", "image_type": "Synthetic",
                         "question": "Which option image shows a shape of the same colour as <image>?",
                         "options": ["<image>"] * 4 + ["None of the choices provided"], "answer": answer,
                         "image_list": [_cell(im) for im in imgs], "counterpart_idx": str(i + 1 - j)})
        i += 2
    features = Features({
        "idx": Value("string"), "task": Value("string"), "image_relation": Value("string"),
        "image_type": Value("string"), "question": Value("string"), "options": List(Value("string")),
        "answer": Value("string"), "image_list": List(HFImage()), "counterpart_idx": Value("string"),
    })
    root = Path(root)
    _write(rows[:n], features, root / "data" / "test-00000-of-00001.parquet")
    return root


WRITERS = {"realworldqa": write_realworldqa, "blink": write_blink, "muirbench": write_muirbench}


def write_synthetic(benchmark: str, root, n: int = 100, seed: int = 0, size: int = 64) -> Path:
    """Write ``n`` synthetic rows of ``benchmark`` in its published layout under ``root``."""
    if benchmark not in WRITERS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(WRITERS)}")
    if n < 4:
        raise ValueError(f"n must be at least 4, got {n}")
    return WRITERS[benchmark](root, n=n, seed=seed, size=size)
