"""Captions and oracle chains of thought written from a synthetic sample's ground truth.

``caption``: one line per image (``Original:``, ``A:`` … ``D:``) describing the product, its
scene, its shadow and whatever the defects changed. ``cot``: reasoning that walks through A,
B, C and D, names what is wrong with each (or why it passes) and ends with the answer. The
``<think>``/``<answer>`` tags are not included: `labkit.prompts.target_text` adds them.
`labkit.annotate` (oracle mode) rebuilds both from a sample's ``meta`` with these functions.

    spec, rng = build_spec(0, "train", SynthConfig())
    print(caption(spec.product, spec.scene, spec.defects))
    print(chain_of_thought(spec.product, spec.scene, spec.defects, spec.answer, rng))
"""
from __future__ import annotations

import numpy as np

from labkit.data import DIMENSION_SHORT, DIMENSION_WORDS
from labkit.metrics import LETTERS, NONE_ANSWER
from labkit.synth.products import Product, colour_name, shift_hue
from labkit.synth.scenes import Scene

_PART_NAMES = {"band": "brand band", "logo": "logo", "cap": "cap", "label": "label", "bubbles": "pills of the blister",
               "chunk": "top corner"}
def _noun(product: Product) -> str:
    return {"box": "box", "bottle": "bottle", "blister": "blister pack", "tube": "tube", "photo": "product"}[product.kind]


def _other(side: str) -> str:
    return "right" if side == "left" else "left"


def observation(defect: dict, product: Product, scene: Scene) -> str:
    """What a careful reviewer sees for one defect (a clause without a final full stop)."""
    k, p = defect["kind"], defect["params"]
    noun = _noun(product)
    surface = scene.surface
    shadow_side = "right" if scene.shadow_dir > 0 else "left"
    if k == "colour_shift":
        was, now = colour_name(product.brand), colour_name(shift_hue(product.brand, p["hue"]))
        if was == now:
            return f"the colours of the {noun} are slightly off: its {was} is a different shade"
        return f"the {noun}'s {was} colour has turned {now}"
    if k == "text_changed":
        if p.get("no_text"):
            return f"the text on the {noun} is gone"
        return f"the name on the {noun} reads '{p['name']}' instead of '{product.name}'"
    if k == "part_missing":
        return f"the {_PART_NAMES.get(p['part'], p['part'])} of the {noun} is missing"
    if k == "part_added":
        if p["part"] == "sticker":
            return f"a yellow star sticker that the original lacks is on the {noun}"
        return f"an extra coloured band that the original lacks is on the {noun}"
    if k == "warp":
        if "bulge" in p:
            return f"the {noun} is warped, {'bulging out' if p['bulge'] > 0 else 'pinched in'} at the middle"
        return f"the {noun} is sheared out of shape, its top pushed to the {'right' if p['shear'] > 0 else 'left'}"
    if k == "aspect":
        return f"the {noun} is {'stretched wider' if p['aspect'] > 1 else 'squeezed narrower'} than the original"
    if k == "quantity":
        return f"there are {p['quantity']} copies of the {noun} instead of one"
    if k == "shadow_against_light":
        return (f"its shadow falls to the {_other(shadow_side)}, towards the light from the {scene.light}, "
                f"while the other shadows fall to the {shadow_side}")
    if k == "shadow_missing":
        return f"the {noun} casts no shadow, although the light and the props' shadows call for one"
    if k == "shadow_detached":
        return f"its shadow is detached from the {noun}, lying off to the {shadow_side} away from its base"
    if k == "shadow_doubled":
        return f"the {noun} casts two shadows, one on each side, under a single light"
    if k == "floating":
        return f"the {noun} floats above the {surface}, with a gap between its base and its shadow"
    if k == "sinking":
        return f"the bottom of the {noun} sinks into the {surface}"
    if k == "tilt":
        return f"the {noun} leans about {abs(round(p['angle']))} degrees with nothing to hold it up"
    if k == "wrong_scale":
        return f"the {noun} is {'far too large' if p['scale'] > 1 else 'far too small'} for the scene"
    if k == "pills":
        n = p["n"]
        return f"{'a loose pill lies' if n == 1 else f'{n} loose pills lie'} next to the {noun}, which the original does not have"
    if k == "added_prop":
        return f"a {p['prop']['kind']} that is not in the original stands next to the {noun}"
    if k == "second_product":
        return f"a second, different product stands next to the {noun}"
    if k == "decoration":
        what = {"bow": "a ribbon bow", "sparkles": "sparkles", "leaves": "leaves"}[p["style"]]
        return f"{what} {'is' if p['style'] == 'bow' else 'are'} stuck on the edges of the {noun}"
    raise ValueError(f"no description for defect kind {k!r}")


def _clean_description(product: Product, scene: Scene) -> str:
    shadow_side = "right" if scene.shadow_dir > 0 else "left"
    where = {"table": "the table", "shelf": "the shelf", "floor": "the floor"}[scene.surface]
    return (f"the {_noun(product)} stands on {where}, its shadow falling to the {shadow_side} "
            f"like the props' shadows")


def caption(product: Product, scene: Scene, candidates: list[list[dict]]) -> str:
    """One line per image: Original, then A-D."""
    lines = [f"Original: {product.describe()}, alone on a white background."]
    for letter, defects in zip(LETTERS, candidates):
        if not defects:
            text = _clean_description(product, scene) + f"; {scene.describe()}"
        else:
            text = "; ".join(observation(d, product, scene) for d in defects) + f"; {scene.describe()}"
        lines.append(f"{letter}: {text[0].upper()}{text[1:]}.")
    return "\n".join(lines)


_OPENINGS = (
    "I compare each image with the original, {desc}.",
    "The original shows {desc}. I check A, B, C and D in turn.",
    "Reference: {desc}. Now each candidate.",
)
_PASS = (
    "{L}: the product matches the original in shape, colour and text; {clean}; nothing was added. {L} is acceptable.",
    "{L}: same product as the original, nothing added; {clean}. {L} passes.",
)
_FAIL = (
    "{L}: {obs}. That is a {dims} problem, so {L} is not acceptable.",
    "{L}: {obs}. {L} fails on {dims}.",
)


def _answer_words(answer: str) -> str:
    if answer == NONE_ANSWER:
        return "None of the images is acceptable, so the answer is N."
    if len(answer) == 1:
        return f"Only {answer} is acceptable, so the answer is {answer}."
    letters = ", ".join(answer[:-1]) + " and " + answer[-1]
    return f"The acceptable images are {letters}, so the answer is {answer}."


# A few words for what each finer defect kind looks like (labkit.synth.defects.DEFECT_KINDS).
KIND_WORDS = {
    "colour_shift": "colour shifted", "text_changed": "text changed", "part_missing": "part missing",
    "part_added": "part added", "warp": "warped", "aspect": "stretched", "quantity": "extra copies",
    "shadow_against_light": "shadow against the light", "shadow_missing": "no shadow",
    "shadow_detached": "shadow detached", "shadow_doubled": "two shadows",
    "floating": "floating", "sinking": "sinking", "tilt": "tilted", "wrong_scale": "wrong scale",
    "pills": "loose pills", "added_prop": "added prop", "second_product": "second product",
    "decoration": "decoration",
}
NOTHING_SEEN = "nothing wrong"


def seen_words(kinds) -> str:
    """What a candidate shows, in a few words: "floating, no shadow", or "nothing wrong"."""
    return ", ".join(KIND_WORDS[k] for k in dict.fromkeys(kinds)) if kinds else NOTHING_SEEN


def image_line(meta: dict, index: int) -> str:
    """One short line on what image ``index`` of a synthetic sample shows (0 = the original,
    1-4 = A-D), from its ``meta``: the product for the original ("red box of Neozol"), the
    visible defects first, then the scene, for a candidate ("floating; box on the shelf, light
    from the left"; "nothing wrong; ..."). Perception only: it never says whether a candidate is
    acceptable."""

    product, scene = meta["product"], meta["scene"]
    noun = _noun(Product(**{k: tuple(v) if isinstance(v, list) else v for k, v in product.items()}))
    if index == 0:
        return f"{colour_name(product['brand'])} {noun} of {product['name']}"
    kinds = meta["candidates"][index - 1]["kinds"]
    return f"{seen_words(kinds)}; {noun} on the {scene['surface']}, light from the {scene['light']}"


def defect_line(meta: dict, index: int) -> str:
    """What is wrong in candidate image ``index`` (1-4) of a synthetic sample, in a few words
    ("floating, no shadow"; "nothing wrong"): `image_line` without the scene."""
    if index == 0:
        raise ValueError("the original (index 0) has no defects to describe")
    return seen_words(meta["candidates"][index - 1]["kinds"])


def short_chain_of_thought(candidates: list[list[dict]], answer: str) -> str:
    """A terse oracle reasoning for small models: one verdict per image, then the answer.
    e.g. "A: good. B: floating (placement). C: good. D: pills (extension). So the answer is AC." """
    parts = []
    for letter, defects in zip(LETTERS, candidates):
        if not defects:
            parts.append(f"{letter}: good.")
        else:
            what = ", ".join(f"{d['kind'].replace('_', ' ')} ({DIMENSION_SHORT[d['dimension']]})" for d in defects)
            parts.append(f"{letter}: {what}.")
    parts.append(f"So the answer is {answer}.")
    return " ".join(parts)


def chain_of_thought(product: Product, scene: Scene, candidates: list[list[dict]], answer: str,
                     rng: np.random.Generator, style: str = "full") -> str:
    """Oracle reasoning: A, B, C, D in order, each verdict justified, ending in the answer.
    ``style="short"``: `short_chain_of_thought` (one verdict per image)."""
    if style == "short":
        return short_chain_of_thought(candidates, answer)
    if style != "full":
        raise ValueError(f"unknown CoT style {style!r}; expected 'full' or 'short'")
    parts = [_OPENINGS[int(rng.integers(len(_OPENINGS)))].format(desc=product.describe())]
    clean = _clean_description(product, scene).replace(f"the {_noun(product)} stands", "it stands")
    for letter, defects in zip(LETTERS, candidates):
        if not defects:
            parts.append(_PASS[int(rng.integers(len(_PASS)))].format(L=letter, clean=clean))
            continue
        obs = "; ".join(observation(d, product, scene) for d in defects)
        dims = []
        for d in defects:
            if DIMENSION_WORDS[d["dimension"]] not in dims:
                dims.append(DIMENSION_WORDS[d["dimension"]])
        text = _FAIL[int(rng.integers(len(_FAIL)))].format(L=letter, obs=obs, dims=" and ".join(dims))
        parts.append(text[0].upper() + text[1:])
    parts.append(_answer_words(answer))
    return " ".join(parts)
