"""Shared package of the stage scripts (scripts/<stage>.py, installed as llm_recipes.scripts): recipe parsing and
placeholders (config), one-line errors (errors), launching stages and the completion check (runner), input checks and
loading (data), generation (generation), the tiny worlds' text (tiny_world, copy_world), Self-Instruct's pieces
(self_instruct), reports, statistics, plots and model cards (reporting/), our datatrove pipeline steps, per-language
defaults, the corpus pipelines, their executors, MinHash parameters and accounting (corpus/), Japanese tokenizer
metrics and vocabulary expansion (tokenizer/), model building, loading and importing, pretraining data in token
blocks, SFT batch layouts, instruction and preference data formats, the recall-target callback and the pretraining
dry-run plan (training/), and local lm-eval tasks and their benchmark readers, results, measures, the shared-context
scorer, judging, pass@k, SliCK and the EOS probe (evaluation/). Nothing here is a stage of its own.

Modules renamed so that each name says what it holds (old import paths -> new): docs/running.md, "Renamed
modules"."""
