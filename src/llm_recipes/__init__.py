"""Shared package of the stage scripts (scripts/<stage>.py, installed as llm_recipes.scripts): recipe parsing and
placeholders (config), one-line errors (errors), launching stages and the completion check (runner), input checks and
loading (data), generation (generation), reports, statistics, plots and model cards (reporting/), our datatrove blocks,
per-language defaults and the corpus pipelines (corpus/), Japanese tokenizer metrics and vocabulary expansion
(tokenizer/), model building, loading, importing and packing (training/), and local lm-eval tasks, measures and the
shared-context scorer (evaluation/). Nothing here is a stage of its own."""
