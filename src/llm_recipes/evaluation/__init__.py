"""Evaluation pieces: local lm-eval task files (tasks, lm_eval_tasks/) read from the benchmarks' release formats
(benchmark_readers), the evaluation stage's results: calibration, leaderboard tables, run files and score plots
(results), what it measures beyond lm-eval (measures), the shared-context scorer (shared_context), LLM-as-a-judge
(judging), pass@k in a sandbox (code_eval), SliCK (slick) and the EOS-boundary probe (eos_probe)."""

import os

TASK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lm_eval_tasks")
