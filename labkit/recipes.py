"""Experiment recipes: one YAML file per arm, loaded into a validated `Recipe`.

A recipe says everything a training run needs: which model to start from, which data
and conversion, what to freeze, the rewards (GRPO), and the TRL trainer settings
(``training``: keyword arguments of `trl.SFTConfig` or `trl.GRPOConfig`, set explicitly
because TRL's defaults differ from the paper's). Run one with::

    labkit sft  --recipe recipes/small/sft.yaml [--set training.learning_rate=1e-3 ...]
    labkit grpo --recipe recipes/small/grpo.yaml [--run-dir runs/mine]

Placeholders. ``model``, ``data`` and ``output_dir`` may contain ``{run_dir}`` (the
recipe's ``run_dir`` field, which the CLI's ``--run-dir`` or an ablation runner
overrides) and ``{arm}``. So ``model: "{run_dir}/sft/final"`` in a GRPO recipe starts
from the SFT arm's final model of the same run folder.

Unknown keys anywhere (top level, ``conversion``, ``freeze``, ``training``) are errors
naming the key, so a typo never silently falls back to a default.

    >>> r = load_recipe("recipes/small/grpo.yaml", {"run_dir": "runs/x"})   # doctest: +SKIP
    >>> r.model, r.rewards                                                  # doctest: +SKIP
    ('runs/x/sft/final', {'format': 1.0, 'accuracy': 1.0})
"""
from __future__ import annotations

import copy
import dataclasses
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.conversions import Conversion
from labkit.data import SPLITS
from labkit.dynamic_sampling import MODES as DS_MODES
from labkit.perception import PERCEPTION_KINDS
from labkit.prompts import FORMS, LAYOUTS, STYLES, VARIANTS
from labkit.rewards import REWARDS

STAGES = ("sft", "grpo")
SFT_TASKS = ("screen", "caption")
COT_STYLES = ("sample", "verdicts")
PLACEHOLDERS = ("run_dir", "arm")


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the key."""


@dataclass
class ConversionSpec:
    """How samples become model inputs (see `labkit.conversions.Conversion`)."""

    form: str = field(default="cot", metadata={"help": "cot (think + answer) or direct (answer only)"})
    layout: str = field(default="separate", metadata={"help": "separate (original + 4 images) or grid (original + 2x2 grid)"})
    variant: str = field(default="train", metadata={"help": "train (all acceptable letters) or eval (one letter)"})
    image_size: int | None = field(default=None, metadata={"help": "resize every image to this square size; null keeps it"})
    prompt: str = field(default="full", metadata={"help": "full (the paper's prompt) or short (small mode on CPU: same rules, ~50 tokens)"})

    def to_conversion(self):
        return Conversion(form=self.form, layout=self.layout, variant=self.variant, image_size=self.image_size,
                          prompt=self.prompt)


@dataclass
class FreezeSpec:
    """Which parts of the VLM get no gradient (``requires_grad_(False)``)."""

    vision: bool = field(default=False, metadata={"help": "freeze the vision tower (ViT)"})
    projector: bool = field(default=False, metadata={"help": "freeze the projector (InternVL's multi_modal_projector, Qwen's merger)"})
    language: bool = field(default=False, metadata={"help": "freeze the language model (and its LM head)"})


@dataclass
class Recipe:
    """One experiment arm. Every field may be set in YAML; unknown keys are errors."""

    arm: str = field(metadata={"help": "arm name (sft, grpo, dpa-grpo, ...); also the default output folder name"})
    stage: str = field(metadata={"help": "sft or grpo"})
    model: str = field(metadata={"help": "model folder or hub id to start from; may use {run_dir}"})
    data: str = field(metadata={"help": "dataset folder (labkit.data layout); may use {run_dir}"})
    description: str = field(default="", metadata={"help": "what this arm is, in a sentence"})
    run_dir: str = field(default="runs/small", metadata={"help": "run folder that {run_dir} expands to"})
    output_dir: str = field(default="{run_dir}/{arm}", metadata={"help": "where checkpoints, logs and final/ go"})
    split: str = field(default="train", metadata={"help": "training split (train, pseudo_label)"})
    extra_splits: list[str] = field(default_factory=list, metadata={"help": "more splits appended to the training data (SFT), e.g. [pseudo_label]"})
    tasks: list[str] = field(default_factory=lambda: ["screen"], metadata={"help": "SFT row kinds: screen (prompt -> CoT/answer) and/or caption (stage 1.1); may be empty when perception rows are given"})
    perception: dict[str, int] = field(default_factory=dict, metadata={"help": "SFT perception rows {kind: count} (labkit.perception: describe_image, describe, describe_mixed) from the training split's synthetic ground truth"})
    limit: int | None = field(default=None, metadata={"help": "use at most this many training samples (the first ones); null: all"})
    cot: str = field(default="sample", metadata={"help": "SFT reasoning target: sample (the sample's own cot) or verdicts (one short verdict per candidate from its defect tags: short completions for CPU)"})
    conversion: ConversionSpec = field(default_factory=ConversionSpec, metadata={"help": "prompt form, image layout, answer variant, image size"})
    freeze: FreezeSpec = field(default_factory=FreezeSpec, metadata={"help": "parts of the model to freeze"})
    lora: dict | None = field(default=None, metadata={"help": "peft.LoraConfig kwargs; null trains full weights. Merged into final/"})
    rewards: dict[str, float] = field(default_factory=dict, metadata={"help": "GRPO rewards {name: weight} from labkit.rewards.REWARDS"})
    training: dict[str, Any] = field(default_factory=dict, metadata={"help": "trl.SFTConfig / trl.GRPOConfig kwargs, set explicitly"})
    seed: int = field(default=0, metadata={"help": "seed for data order, sampling and initialisation"})
    resume: bool = field(default=False, metadata={"help": "continue from the last checkpoint-* in output_dir"})
    hcm: dict = field(default_factory=dict, metadata={"help": "hard-case mining schedule (labkit.hcm); non-empty dispatches to run_hcm_grpo"})
    dynamic_sampling: bool = field(default=False, metadata={"help": "deal with prompt groups whose rewards all tie (labkit.dynamic_sampling)"})
    dynamic_sampling_mode: str = field(default="refill", metadata={"help": "refill (over-generate and filter until the batch holds only informative groups, as verl/DAPO) or mask (drop tied groups from the loss)"})
    dynamic_sampling_max_rounds: int = field(default=4, metadata={"help": "refill: at most this many extra generation rounds per generation batch"})
    source: str = field(default="", metadata={"help": "the YAML file this recipe came from (set by load_recipe)"})

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir)

    @property
    def final_dir(self) -> Path:
        """Where the trained model (with its processor) is saved."""
        return Path(self.output_dir) / "final"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_NESTED = {"conversion": ConversionSpec, "freeze": FreezeSpec}


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def help_text(cls=Recipe) -> str:
    """The recipe fields and their help, for ``--help`` and docs."""
    lines = []
    for f in dataclasses.fields(cls):
        lines.append(f"{f.name}: {f.metadata.get('help', '')}")
        if f.name in _NESTED:
            for g in dataclasses.fields(_NESTED[f.name]):
                lines.append(f"  {f.name}.{g.name}: {g.metadata.get('help', '')}")
    return "\n".join(lines)


def parse_value(text: str) -> Any:
    """A ``--set`` value as YAML (numbers, booleans, null, lists); plain text otherwise."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return _number(value)


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; read it as the float it means."""
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)
    return value


def parse_overrides(pairs: list[str] | None) -> dict:
    """``["training.learning_rate=1e-4", "limit=32"]`` -> {dotted key: value}."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise RecipeError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = parse_value(value)
    return out


def _check_override_key(dotted: str, stage: str | None, check_training: bool = True) -> None:
    """A typo in an override is the override's fault, not the recipe file's: say so."""
    parts = dotted.split(".")
    known = _field_names(Recipe)
    if parts[0] not in known:
        raise RecipeError(f"override --set {dotted}=...: unknown key {parts[0]!r}; known keys: {', '.join(known)}")
    if parts[0] in _NESTED and len(parts) > 1 and parts[1] not in _field_names(_NESTED[parts[0]]):
        raise RecipeError(f"override --set {dotted}=...: unknown key {parts[0]}.{parts[1]!r}; "
                          f"known: {', '.join(_field_names(_NESTED[parts[0]]))}")
    if parts[0] == "training" and len(parts) > 1 and check_training and stage in STAGES:
        cls = training_config_class(stage)
        if parts[1] not in _field_names(cls):
            raise RecipeError(f"override --set {dotted}=...: unknown training key {parts[1]!r} for {cls.__name__}")


def _apply_override(raw: dict, dotted: str, value: Any, where: str) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        if node.get(part) is None:
            node[part] = {}
        if not isinstance(node[part], dict):
            raise RecipeError(f"{where}: override {dotted!r}: {part!r} is not a mapping")
        node = node[part]
    node[parts[-1]] = value


def _expand(text: str, values: dict, where: str, key: str) -> str:
    names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    unknown = names - set(values)
    if unknown:
        raise RecipeError(
            f"{where}: {key} uses unknown placeholder(s) {', '.join('{' + n + '}' for n in sorted(unknown))}; "
            f"known: {', '.join('{' + n + '}' for n in PLACEHOLDERS)}"
        )
    return text.format(**values)


def training_config_class(stage: str):
    """The TRL config class a stage's ``training`` dict is passed to."""
    if stage == "sft":
        from trl import SFTConfig

        return SFTConfig
    from trl import GRPOConfig

    return GRPOConfig


def _check_training_keys(recipe: Recipe, where: str) -> None:
    cls = training_config_class(recipe.stage)
    known = set(_field_names(cls))
    for key in recipe.training:
        if key not in known:
            raise RecipeError(f"{where}: unknown training key {key!r} for {cls.__name__}")
    if "output_dir" in recipe.training or "seed" in recipe.training:
        raise RecipeError(f"{where}: set output_dir and seed at the recipe's top level, not under training")


def validate(recipe: Recipe, where: str = "recipe", check_training: bool = True) -> Recipe:
    """Check values (not just keys); raise RecipeError naming the key."""

    if recipe.stage not in STAGES:
        raise RecipeError(f"{where}: stage must be one of {', '.join(STAGES)}, got {recipe.stage!r}")
    if not recipe.arm or not isinstance(recipe.arm, str):
        raise RecipeError(f"{where}: arm must be a non-empty string")
    for key in ("model", "data", "output_dir", "run_dir"):
        if not isinstance(getattr(recipe, key), str) or not getattr(recipe, key):
            raise RecipeError(f"{where}: {key} must be a non-empty string")
    for split in [recipe.split] + list(recipe.extra_splits):
        if split not in SPLITS:
            raise RecipeError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    c = recipe.conversion
    if c.form not in FORMS:
        raise RecipeError(f"{where}: conversion.form must be one of {FORMS}, got {c.form!r}")
    if c.layout not in LAYOUTS:
        raise RecipeError(f"{where}: conversion.layout must be one of {LAYOUTS}, got {c.layout!r}")
    if c.variant not in VARIANTS:
        raise RecipeError(f"{where}: conversion.variant must be one of {VARIANTS}, got {c.variant!r}")
    if c.prompt not in STYLES:
        raise RecipeError(f"{where}: conversion.prompt must be one of {STYLES}, got {c.prompt!r}")
    if c.image_size is not None and (not isinstance(c.image_size, int) or c.image_size < 8):
        raise RecipeError(f"{where}: conversion.image_size must be an integer >= 8 or null, got {c.image_size!r}")
    for key in ("vision", "projector", "language"):
        if not isinstance(getattr(recipe.freeze, key), bool):
            raise RecipeError(f"{where}: freeze.{key} must be true or false")
    if recipe.freeze.vision and recipe.freeze.projector and recipe.freeze.language and recipe.lora is None:
        raise RecipeError(f"{where}: freeze freezes every part and there is no lora: nothing would train")
    if recipe.limit is not None and (not isinstance(recipe.limit, int) or recipe.limit < 1):
        raise RecipeError(f"{where}: limit must be a positive integer or null, got {recipe.limit!r}")
    if recipe.lora is not None and not isinstance(recipe.lora, dict):
        raise RecipeError(f"{where}: lora must be a mapping of peft.LoraConfig kwargs or null")
    if not isinstance(recipe.training, dict):
        raise RecipeError(f"{where}: training must be a mapping of TRL config kwargs")
    if not isinstance(recipe.hcm, dict):
        raise RecipeError(f"{where}: hcm must be a mapping (empty for no hard-case mining)")
    if recipe.dynamic_sampling_mode not in DS_MODES:
        raise RecipeError(f"{where}: dynamic_sampling_mode must be one of {', '.join(DS_MODES)}, got {recipe.dynamic_sampling_mode!r}")
    if not isinstance(recipe.dynamic_sampling_max_rounds, int) or isinstance(recipe.dynamic_sampling_max_rounds, bool) \
            or recipe.dynamic_sampling_max_rounds < 0:
        raise RecipeError(f"{where}: dynamic_sampling_max_rounds must be an integer >= 0, got {recipe.dynamic_sampling_max_rounds!r}")
    if recipe.cot not in COT_STYLES:
        raise RecipeError(f"{where}: cot must be one of {', '.join(COT_STYLES)}, got {recipe.cot!r}")
    if recipe.stage == "sft":
        if any(t not in SFT_TASKS for t in recipe.tasks) or not (recipe.tasks or recipe.perception):
            raise RecipeError(f"{where}: tasks must be a list from {SFT_TASKS} (non-empty unless perception rows are given), "
                              f"got {recipe.tasks!r}")
        if not isinstance(recipe.perception, dict) or any(k not in PERCEPTION_KINDS or not isinstance(v, int) or v < 0
                                                           for k, v in recipe.perception.items()):
            raise RecipeError(f"{where}: perception must map kinds from {PERCEPTION_KINDS} to row counts, got {recipe.perception!r}")
        if recipe.rewards:
            raise RecipeError(f"{where}: rewards are for stage grpo, not sft")
        if recipe.hcm or recipe.dynamic_sampling:
            raise RecipeError(f"{where}: hcm and dynamic_sampling are for stage grpo, not sft")
    else:
        if not recipe.rewards:
            raise RecipeError(f"{where}: a grpo recipe needs rewards, e.g. {{format: 1.0, accuracy: 1.0}}")
        if not isinstance(recipe.rewards, dict):
            raise RecipeError(f"{where}: rewards must be a mapping {{name: weight}}")
        for name, weight in recipe.rewards.items():
            if name not in REWARDS:
                raise RecipeError(f"{where}: unknown reward {name!r}; known: {', '.join(sorted(REWARDS))}")
            if not isinstance(weight, (int, float)) or isinstance(weight, bool):
                raise RecipeError(f"{where}: reward weight of {name!r} must be a number, got {weight!r}")
        if recipe.tasks != ["screen"] or recipe.perception:
            raise RecipeError(f"{where}: tasks and perception are SFT settings; GRPO always trains on screening prompts")
        if recipe.conversion.form != "cot":
            raise RecipeError(f"{where}: GRPO's format reward needs conversion.form: cot")

    if check_training:
        _check_training_keys(recipe, where)
    return recipe


def recipe_from_dict(raw: dict, where: str = "recipe", check_training: bool = True) -> Recipe:
    """Build and validate a Recipe from a mapping (placeholders are expanded)."""
    if not isinstance(raw, dict):
        raise RecipeError(f"{where}: a recipe must be a YAML mapping, got {type(raw).__name__}")
    raw = copy.deepcopy(raw)
    known = _field_names(Recipe)
    for key in raw:
        if key not in known:
            raise RecipeError(f"{where}: unknown key {key!r}; known keys: {', '.join(known)}")
    for key, cls in _NESTED.items():
        value = raw.get(key)
        if value is None:
            raw.pop(key, None)
            continue
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: {key} must be a mapping")
        sub_known = _field_names(cls)
        for sub in value:
            if sub not in sub_known:
                raise RecipeError(f"{where}: unknown key {key}.{sub!r}; known: {', '.join(sub_known)}")
        raw[key] = cls(**value)
    missing = [k for k in ("arm", "stage", "model", "data") if k not in raw]
    if missing:
        raise RecipeError(f"{where}: missing required key(s) {', '.join(missing)}")
    for key in ("rewards", "training", "hcm"):
        if raw.get(key) is None and key in raw:
            raw[key] = {}
    if isinstance(raw.get("training"), dict):
        raw["training"] = {k: _number(v) for k, v in raw["training"].items()}
    recipe = Recipe(**raw)
    values = {"arm": recipe.arm}
    values["run_dir"] = _expand(str(recipe.run_dir), values, where, "run_dir")
    recipe.run_dir = values["run_dir"]
    for key in ("model", "data", "output_dir"):
        setattr(recipe, key, _expand(str(getattr(recipe, key)), values, where, key))
    return validate(recipe, where, check_training=check_training)


def load_recipe(path: str | Path, overrides: dict | None = None, check_training: bool = True) -> Recipe:
    """Read a YAML recipe, apply ``overrides`` ({dotted key: value}) and validate it.

    Overrides apply before placeholders expand, so ``{"run_dir": "runs/demo"}`` moves
    every ``{run_dir}`` path. ``check_training`` checks ``training`` keys against the TRL
    config class (imports trl; no model is loaded).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping")
    for key, value in (overrides or {}).items():
        _check_override_key(key, raw.get("stage"), check_training)
        _apply_override(raw, key, value, str(path))
    raw["source"] = str(path)
    return recipe_from_dict(raw, where=str(path), check_training=check_training)


PROJECT_ROOT = Path(__file__).resolve().parent.parent   # the folder holding recipes/ (and labkit/)
RECIPES_DIR = PROJECT_ROOT / "recipes"


def resolve_recipe_path(path: str | Path, base_dirs=(), what: str = "") -> Path:
    """Where a recipe named in a recipe set lives, whatever the working directory.

    Tried in order: an absolute path; relative to each of ``base_dirs`` (the recipe set's folder);
    relative to the project (``recipes/small/sft.yaml`` as the shipped sets write it); relative
    to the working directory last. Raises FileNotFoundError listing the places looked at.
    """
    p = Path(path)
    if p.is_absolute():
        candidates = [p]
    else:
        candidates = [Path(b) / p for b in base_dirs] + [PROJECT_ROOT / p, Path.cwd() / p]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    looked = ", ".join(dict.fromkeys(str(c) for c in candidates))
    raise FileNotFoundError(f"{what + ': ' if what else ''}recipe {str(path)!r} not found (looked at {looked})")


def check_recipes(loaders: dict) -> list:
    """Run every ``{name: loader()}`` that loads a recipe; raise one RecipeError listing every failure.

    Used by `labkit ablate` / `labkit demo` to check all arms' recipes before anything runs.
    """
    from labkit.hcm import HCMConfig

    recipes, problems = [], []
    for name, load in loaders.items():
        try:
            recipe = load()
            if recipe.hcm:
                HCMConfig.from_dict(recipe.hcm)  # the schedule's keys and values, checked now rather than at its turn
            recipes.append(recipe)
        except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"arm {name!r}: {exc}")
    if problems:
        raise RecipeError(f"{len(problems)} arm recipe(s) cannot be used, nothing was run:\n  " + "\n  ".join(problems))
    return recipes


def recipe_set(name_or_dir: str | Path) -> dict[str, Path]:
    """The recipes of a set (``small``, ``paper/2b`` or a folder), {arm file stem: path}."""
    p = Path(name_or_dir)
    if not p.is_dir():
        p = RECIPES_DIR / str(name_or_dir)
    if not p.is_dir():
        raise FileNotFoundError(f"no recipe set {str(name_or_dir)!r} (looked for a folder of YAML files)")
    return {f.stem: f for f in sorted(p.glob("*.yaml"))}
