"""The corpus stage's pieces: datatrove blocks for what datatrove lacks in Japanese (blocks), per-language filter
settings (defaults), the stage's pipelines built from them (pipeline), and the run's executors, accounting, plots
and report (report)."""

import os

NG_WORDS_JA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources", "ng_words_ja.txt")
