"""labkit: the HCM-GRPO screening lab (image aesthetic reasoning with compact VLMs).

Modules, one per pipeline stage: `data` (schema, storage, conversions), `metrics`
(the paper's metric), `rewards` (GRPO rewards on that metric), `prompts`, and the
stages added beside them (synthetic data, generation, annotation, models,
evaluation, training, HCM, app). The command line is `labkit --help`.
"""
__version__ = "0.1.0"
