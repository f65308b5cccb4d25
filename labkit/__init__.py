"""labkit: the HCM-GRPO screening lab (image aesthetic reasoning with compact VLMs).

Modules by pipeline stage (imports are meant to go from a stage to the same or an earlier one):

- ground: `metrics` (the paper's metric, ``LETTERS``), `prompts`, `jsonl` (the one JSONL
  reader and appender), `completions`, `paper` (the paper's numbers);
- data: `data` (schema, the dimension names and their words, validation, storage),
  `conversions` (layouts, messages, training rows), `validate`, `interop`;
- models: `models`, `segment`, `flux`, `diffusion_models`;
- data making: `synth` (procedural samples), `compose` and `generate` (the FLUX pipeline),
  `store*` (the annotation store), the MC benchmarks (`mc_rows`, `benchmarks_mc`, `mc_data`,
  `mc_synth`);
- labelling: `judges`, `annotate`, `oracle`, `verdicts`;
- tasks and scoring: `evaluate`, `screen`, `mc_metrics`, `mc_tasks`, `rewards`, `perception`;
- training: `recipes`, `training`, `sft`, `grpo`, `dynamic_sampling`, `hcm`, `stages`
  (which trainer runs a recipe), `pretrain`, `pretrain_vision`, `baseline`;
- runs and reports: `ablate`, `seeds`, `pipeline`, `report`, `model_card`, `notebooks`,
  `notebook_pairs`, and `cli` (the command line: `labkit --help`).
"""
__version__ = "0.1.0"
