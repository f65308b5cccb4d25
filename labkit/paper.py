"""The paper's reported numbers (../shared/paper.md), shown beside ours in the notebooks and reports.

``PAPER`` maps a table to its rows (accuracies in percent); ``TABLE3_DIMENSIONS`` are the
per-dimension columns of Table 3, in the paper's order (the lab's defect dimensions).
"""
from __future__ import annotations

from labkit.data import DEFECT_DIMENSIONS

PAPER = {
    "random_baseline": 34.27,
    "mean_label_length": 1.7136,
    "weak_cot_accuracy": 38.25,
    "hard_easy_2b": {"hard": 434, "easy": 610},
    "table3": {  # overall / appearance / shadow / placement / extension
        "random": [34.27, 27.61, 31.46, 29.49, 27.25],
        "Qwen2.5-VL-72B direct": [39.74, None, None, None, None],
        "GPT-4o CoT": [34.62, None, None, None, None],
        "Qwen-VL-Max CoT": [38.25, None, None, None, None],
        "HCM-GRPO-1B": [57.48, 58.21, 60.98, 62.71, 57.84],
        "HCM-GRPO-2B": [64.74, 68.66, 65.85, 55.08, 74.51],
    },
    "table4": {  # InternVL3-1B / 2B
        "base-direct": [30.13, 10.68], "base-cot": [25.85, 23.72],
        "sft-direct": [36.75, 45.94], "grpo-base": [28.42, 28.42],
    },
    "table5": {"weak CoT": 34.83, "+ captions": 35.04, "answer-driven only": 51.07, "all": 53.63},  # 2B
    "table6": {  # 1B / 2B
        "sft": [45.94, 53.63], "grpo": [53.85, 58.55], "dpa-grpo": [55.56, 59.83], "hcm-grpo": [57.48, 64.74],
    },
    "table7": {"hard": 58.76, "easy": 59.40, "all": 59.83, "all+random": 60.90, "all+hard": 64.74},  # 2B
    "generalisation": {"RealWorldQA 2B": [61.52, 64.14], "MuirBench 1B": [29.48, 63.43], "BLINK 2B": [40.18, 49.10]},
}
TABLE3_DIMENSIONS = list(DEFECT_DIMENSIONS)
