"""Tokenizer pieces: Japanese metrics (metrics) and the ChatML chat template every stage uses (chatml.jinja: ChatML
with {% generation %} tags, which mark the tokens TRL's assistant_only_loss trains on)."""

import os

CHATML_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chatml.jinja")
with open(CHATML_PATH, encoding="utf-8") as _f:
    CHATML_TEMPLATE = _f.read()
