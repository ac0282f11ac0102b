"""Evaluation pieces: local lm-eval task files (tasks, lm_eval_tasks/), calibration and score plots (report),
LLM-as-a-judge (judging), pass@k in a sandbox (code_eval) and the EOS-boundary probe (eos_probe)."""

import os

TASK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lm_eval_tasks")
