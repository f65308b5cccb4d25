"""The generalisation benchmarks ("mc": single-answer multiple choice over images; the recipes
under recipes/mc/ and the `mc*` recipe sets train and score on them).

- `sources`: BLINK, MuirBench and RealWorldQA as published (hub ids or local copies), their
  protocols and how each is split 1:1 into train and test;
- `rows`: one benchmark row -> an `MCItem` (options, answer letter, images), per benchmark;
- `data`: prepared MC folders: writing, loading, `is_mc_dataset`;
- `synth`: synthetic stand-ins in each benchmark's published schema (offline demos and tests);
- `metrics`: parsing one letter in an item's own range, micro/macro accuracy, the MC rewards;
- `tasks`: MC prompts, prediction rows, scoring and GRPO rows, driven by `labkit.evaluate`'s loop
  through `labkit.tasks.task_for`.

Run: `labkit mc-prepare --benchmark muirbench --source DIR_OR_HUB_ID --out runs/gen/data`, then
`labkit ablate --recipe-set mc --out runs/gen`.
"""
