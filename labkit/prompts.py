"""The screening prompts, in one place: training, evaluation, annotation and the app use these.

They cover the requirements of the paper's Appendix B in the lab's own words:
a role (expert reviewer of generated product images), the task (pick the acceptable
candidates among A–D made from the original), requirement 1 (nothing beyond the
original's items; any change to the product disqualifies it), requirement 2 (lighting,
shadows and placement obey physics), and the answer format.

Variants:
- ``form``: ``cot`` (reason over A, B, C, D then ``<think>…</think><answer>…</answer>``)
  or ``direct`` (the answer only);
- ``layout``: ``separate`` (original + four images) or ``grid`` (original + one 2×2 grid);
- ``variant``: ``train`` (all acceptable letters) or ``eval`` (one letter, the most
  aesthetic when several pass, as in the paper's evaluation);
- ``style``: ``full`` (the paper's prompt, about 230 tokens) or ``short`` (the same
  requirements in about 50 tokens: small mode on CPU, where the full prompt would be most of
  every training sequence).

Images are interleaved with their labels, InternVL's multi-image convention: the user turn
reads ``Original: <image>`` ``A: <image>`` … ``D: <image>`` (or ``Candidates: <image>`` for the
grid), then the instruction (`IMAGE_LABELS`, built into a message by `labkit.conversions.screening_message`).
"""
from __future__ import annotations

FORMS = ("cot", "direct")
LAYOUTS = ("separate", "grid", "pairs")
VARIANTS = ("train", "eval")
STYLES = ("full", "short")

# The label written before each image of a screening prompt, per layout.
IMAGE_LABELS = {
    "separate": ("Original", "A", "B", "C", "D"),
    "grid": ("Original", "Candidates"),
    "pairs": ("A", "B", "C", "D"),
}

ROLE = "You are an expert reviewer of AI-generated product images."

_TASK = {
    "separate": (
        "The first image is the original product photo. The next four images, A, B, C and D, "
        "were generated from it by placing the product into new scenes."
    ),
    "grid": (
        "The first image is the original product photo. The second image is a 2x2 grid of four "
        "generated images, labelled A (top left), B (top right), C (bottom left) and D (bottom right), "
        "made by placing the product into new scenes."
    ),
    "pairs": (
        "Each of the four images A, B, C and D shows the original product photo on the left and, on the "
        "right, an image generated from it by placing the product into a new scene."
    ),
}

REQUIREMENTS = (
    "Requirement 1 (most important): the generated image may contain nothing beyond the items of the "
    "original, and the product must be unchanged. Any change to the product's appearance, shape, colour, "
    "text or quantity disqualifies the image, however attractive it looks.\n"
    "Requirement 2: lighting and composition must obey physics: shadows agree with the scene's light, "
    "the product stands on a surface at a plausible size and angle, nothing floats or sinks."
)

_ANSWER_RULE = {
    "train": "Answer with every acceptable letter in order (for example AC), or N if none is acceptable.",
    "eval": (
        "Answer with one letter: the acceptable image; if several are acceptable, the most aesthetic one; "
        "if none is acceptable, N."
    ),
}

_FORMAT_RULE = {
    "cot": (
        "Look at each image in turn (A, B, C, D): check the product for changes, the lighting and shadows, "
        "and the placement. Write your reasoning inside <think></think>, then the answer inside "
        "<answer></answer>."
    ),
    "direct": "Reply with the answer only (letters A-D, or N).",
}


_SHORT_TASK = {
    "separate": "Screen the generated images A-D against the original",
    "grid": "Screen the generated images A-D (the 2x2 grid: A top left, B top right, C bottom left, D bottom right) against the original",
    "pairs": "Screen the generated images A-D (each on the right, the original on the left)",
}
_SHORT_RULES = ": the product unchanged, nothing added, shadows and placement physically right."
_SHORT_ANSWER = {
    ("cot", "train"): "Give a verdict for each image inside <think></think>, then every acceptable letter (or N) inside <answer></answer>.",
    ("cot", "eval"): "Give a verdict for each image inside <think></think>, then the best acceptable letter (or N) inside <answer></answer>.",
    ("direct", "train"): "Reply with every acceptable letter (or N) only.",
    ("direct", "eval"): "Reply with the best acceptable letter (or N) only.",
}


def screening_prompt(form: str = "cot", layout: str = "separate", variant: str = "train", style: str = "full") -> str:
    """The user instruction for one screening sample (the images come before it)."""
    if form not in FORMS:
        raise ValueError(f"unknown prompt form {form!r}; expected one of {FORMS}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown prompt variant {variant!r}; expected one of {VARIANTS}")
    if style not in STYLES:
        raise ValueError(f"unknown prompt style {style!r}; expected one of {STYLES}")
    if style == "short":
        return _SHORT_TASK[layout] + _SHORT_RULES + " " + _SHORT_ANSWER[(form, variant)]
    return "\n".join(
        [ROLE, _TASK[layout], "Choose the image(s) that meet the requirements.", REQUIREMENTS,
         _ANSWER_RULE[variant], _FORMAT_RULE[form]]
    )


def target_text(answer: str, cot: str | None, form: str = "cot") -> str:
    """The assistant reply that SFT teaches: CoT form wraps the reasoning and answer in tags."""
    if form == "direct":
        return answer
    if form != "cot":
        raise ValueError(f"unknown prompt form {form!r}")
    return f"<think>{(cot or '').strip()}</think><answer>{answer}</answer>"


CAPTION_PROMPT = (
    ROLE + " Describe each image briefly, one line each, starting with 'Original:', 'A:', 'B:', 'C:', 'D:'. "
    "Describe the product, its shape, colours and text, its shadow and how it stands in the scene."
)
# The same request in the short style, and for a single image (the small model's alignment stage).
CAPTION_PROMPT_SHORT = "Describe each image in one line: Original, A, B, C, D."
IMAGE_CAPTION_PROMPT = "Describe this image in one line."


def caption_prompt(style: str = "full") -> str:
    """The request to describe every image of a sample, in the prompt style of the model."""
    if style not in STYLES:
        raise ValueError(f"unknown prompt style {style!r}; expected one of {STYLES}")
    return CAPTION_PROMPT if style == "full" else CAPTION_PROMPT_SHORT


def answer_driven_prompt(answer: str, layout: str = "separate") -> str:
    """Ask a judge for the reasoning that reaches a given human answer (paper, Section 3.2)."""
    return "\n".join(
        [ROLE, _TASK[layout], REQUIREMENTS,
         f"A human reviewer judged the acceptable image(s) to be: {answer} (N means none).",
         "Explain, looking at A, B, C and D in turn, why each is acceptable or not, so that the reasoning "
         "reaches that answer. Write the reasoning inside <think></think> and repeat the answer inside "
         "<answer></answer>."]
    )
