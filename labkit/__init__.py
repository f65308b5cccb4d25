"""labkit: the HCM-GRPO screening lab (image aesthetic reasoning with compact VLMs).

Modules by pipeline floor, lowest first; a module imports its own floor or lower ones only, and
there are no import cycles (tests/test_structure.py checks both, with the floors listed there):

- ground: `metrics` (the paper's metric, ``LETTERS``), `prompts`, `jsonl` (the one JSONL reader
  and appender), `verdicts`, `completions`;
- data: `data` (schema, the dimension names and their words, validation, storage, training
  splits), `conversions` (layouts, messages, training rows), `paper` (the paper's numbers),
  `validate`;
- models and making data: `models`, `infer` (generation and streaming), `synth/` (procedural
  samples), `segment`, `compose`, `generate`, `flux`, `diffusion_models` (the FLUX pipeline),
  `store/` (the annotation store), `mc/` (the generalisation benchmarks), `rewards`,
  `perception`, `dynamic_sampling`;
- labelling: `judge_base`, `judges`, `annotate`, `oracle`, `model_card`;
- tasks: `tasks` (`task_for`: screening or multiple choice), `evaluate` (the one evaluation
  loop), `screen` (batch screening of unlabelled work), `interop` (import/export);
- training: `recipes`, `training`, `stages` (which trainer runs a recipe), `sft`, `grpo`, `hcm`,
  `pretrain`, `pretrain_vision`, `baseline`;
- runs and reports: `ablate`, `seeds`, `pipeline`, `report`, `notebooks`, `notebook_pairs`;
- front doors: `app/` (the Gradio app) and `cli/` (`labkit --help`).
"""
__version__ = "0.1.0"
