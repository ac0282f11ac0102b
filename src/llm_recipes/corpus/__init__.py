"""The corpus stage's pieces: datatrove pipeline steps for what datatrove lacks in Japanese (steps), per-language
filter settings (defaults), the stage's pipelines built from them (pipeline), the executors that run them and the Slurm
dry run's scripts (executors), the MinHash LSH buckets x rows choice (lsh_params), and the run's accounting, plots and
report (accounting)."""

import os

NG_WORDS_JA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources", "ng_words_ja.txt")
