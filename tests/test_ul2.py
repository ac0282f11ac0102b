"""UL2 mixture of denoisers (objective: ul2 in scripts/pretrain.py): the collator's examples against the specification
(mode token, spans, sentinels, separator, targets, labels), its span statistics, a short run whose loss falls, held-out
loss from the causal collator, and recipe errors at parse time."""
import os

import numpy as np
import pytest
from conftest import REPO, tiny_tokenizer_dir

from llm_recipes.config import load_recipe
from llm_recipes.errors import RecipeError
from llm_recipes.training.ul2 import (
    MODE_TOKENS,
    SEPARATOR,
    UL2Collator,
    check_objective,
    random_spans,
    sentinel,
    span_counts,
    text_length,
)

DOCS = os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl")
R = {"mode": "R", "mean_span": 3, "corruption_rate": 0.15, "weight": 1.0}
X = {"mode": "X", "mean_span": 32, "corruption_rate": 0.5, "weight": 1.0}
S = {"mode": "S", "mean_span": None, "corruption_rate": 0.25, "weight": 2.0}


class Vocab:
    """A tokenizer's token -> id lookup: special tokens from 1000 up, text ids below."""

    pad_token_id, eos_token_id = 0, 1

    def __init__(self):
        self.ids = {}

    def convert_tokens_to_ids(self, tokens):
        return [self.ids.setdefault(t, 1000 + len(self.ids)) for t in tokens]


def split_example(ids, labels, vocab):
    """(mode, corrupted input, targets) of one R / X example; the separator occurs exactly once."""
    sep = vocab.ids[SEPARATOR]
    assert ids.count(sep) == 1
    cut = ids.index(sep)
    assert labels[:cut + 1] == [-100] * (cut + 1)  # masked exactly on mode + corrupted input + separator
    assert labels[cut + 1:] == ids[cut + 1:]  # every target token is in the loss
    return ids[0], ids[1:cut], ids[cut + 1:]


def test_span_example_matches_the_specification_and_reconstructs_the_text():
    vocab = Vocab()
    collator = UL2Collator(vocab, [R, X], block_size=128, seed=0)
    text = list(range(10, 138))
    sentinels = {vocab.ids[sentinel(i)]: i for i in range(16) if sentinel(i) in vocab.ids}
    for denoiser in (R, X):
        n = text_length(128, denoiser)
        noise, spans = span_counts(n, denoiser)
        assert (n, noise, spans) == {"R": (114, 17, 6), "X": (122, 61, 2)}[denoiser["mode"]]
        ids, labels = collator.example(text, denoiser)
        assert len(ids) == n + 2 * spans + 2 == 128  # fills the block: mode + text + 2 per span + separator
        mode, corrupted, targets = split_example(ids, labels, vocab)
        assert mode == vocab.ids[MODE_TOKENS[denoiser["mode"]]]
        # sentinels 0..k-1 in order, once each, in the input and again in the targets (which start with sentinel 0)
        assert [sentinels[t] for t in corrupted if t in sentinels] == list(range(spans))
        assert [sentinels[t] for t in targets if t in sentinels] == list(range(spans)) and targets[0] in sentinels
        assert corrupted[0] not in sentinels  # the text starts with kept tokens
        assert len(targets) - spans == noise
        # filling each sentinel of the input with its span from the targets gives back the text
        fill, current = {}, None
        for t in targets:
            if t in sentinels:
                current = fill.setdefault(sentinels[t], [])
            else:
                current.append(t)
        assert all(fill[i] for i in range(spans))  # no empty span
        restored = [u for t in corrupted for u in (fill[sentinels[t]] if t in sentinels else [t])]
        assert restored == text[:n]


def test_prefix_lm_example_and_padding():
    vocab = Vocab()
    collator = UL2Collator(vocab, [S], block_size=32, seed=0)
    ids, labels = collator.example(list(range(10, 42)), S)
    assert ids == [vocab.ids["[S]"], *range(10, 41)]  # mode token + 31 text tokens: no sentinel, no separator
    assert labels == [-100] * 24 + list(range(33, 41))  # the last round(0.25 x 31) = 8 tokens are the target
    batch = collator([{"input_ids": list(range(10, 30))}])  # a short block: right-padded, padding out of the loss
    assert batch["input_ids"].shape == (1, 32) and batch["attention_mask"][0].tolist() == [1] * 20 + [0] * 12
    assert batch["labels"][0, 20:].tolist() == [-100] * 12 and batch["input_ids"][0, 20:].tolist() == [0] * 12


def test_span_statistics_and_mixture_weights():
    rng = np.random.default_rng(0)
    n = text_length(128, R)
    lengths, covered = [], np.zeros(n)
    for _ in range(2000):
        spans = random_spans(n, R, rng)
        assert len(spans) == 6 and sum(length for _, length in spans) == 17  # exactly 15 % of 114, in 6 spans
        ends = [s + length for s, length in spans]
        assert spans[0][0] > 0 and all(e < s for e, (s, _) in zip(ends, spans[1:]))  # ordered, never touching
        assert ends[-1] <= n
        lengths += [length for _, length in spans]
        for s, length in spans:
            covered[s:s + length] += 1
    assert np.mean(lengths) == pytest.approx(17 / 6) and 1 == min(lengths) < max(lengths)
    rate = covered / 2000  # T5's layout: kept run first, noise run last; in between about the corruption rate
    assert rate.mean() == pytest.approx(17 / 114) and rate[0] == 0 and rate[-1] == 1
    assert 0.09 < rate[10:90].min() and rate[10:90].max() < 0.21
    collator = UL2Collator(Vocab(), [R, S], block_size=64, seed=1)  # weights 1 : 2
    collator([{"input_ids": list(range(10, 74))}] * 3000)
    share = collator.counts["S(rate=0.25)"]["examples"] / 3000
    assert share == pytest.approx(2 / 3, abs=0.03)

    def draws(rank):  # each process (and data-loader worker) has its own stream; a given one is reproducible
        batch = UL2Collator(Vocab(), [R, X], block_size=64, seed=1, rank=rank)([{"input_ids": list(range(10, 74))}] * 8)
        return batch["input_ids"].tolist()

    assert draws(0) == draws(0) != draws(1)


def test_pretraining_with_ul2_adds_its_tokens_lowers_the_loss_and_evaluates_causally(tmp_path):
    from transformers import AutoTokenizer

    from llm_recipes.scripts import pretrain

    tok_dir = tiny_tokenizer_dir(tmp_path)  # the plain tokenizer: no UL2 tokens yet
    keys = dict(dataset_name=DOCS, tokenizer_name_or_path=tok_dir, output_dir=str(tmp_path / "ul2"), hidden_size=64,
                intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, block_size=64, max_steps=12,
                per_device_train_batch_size=8, learning_rate=3e-3, logging_steps=2, save_steps=100, report_to=[],
                eval_strategy="no", objective="ul2", ul2={"denoisers": [
                    {"mode": "R", "mean_span": 3, "corruption_rate": 0.15},
                    {"mode": "X", "mean_span": 3, "corruption_rate": 0.5}, {"mode": "S", "corruption_rate": 0.25}]})
    report = pretrain.main(*load_recipe("pretrain", keys))
    assert report["objective"] == "ul2" and report["loss_last"] < report["loss_first"]
    assert 12 * 8 <= sum(report["ul2_examples_collated"].values()) <= 13 * 8 and 0.2 < report["ul2_loss_token_fraction"] < 0.5
    saved = AutoTokenizer.from_pretrained(tmp_path / "ul2")  # saved with the model, which has a row for each token
    assert saved.convert_tokens_to_ids("[X]") is not None and saved.convert_tokens_to_ids("<extra_id_7>") is not None
    assert report["parameters"] > 0 and len(saved) > len(AutoTokenizer.from_pretrained(tok_dir))

    args, training_args = load_recipe("pretrain", {**keys, "output_dir": str(tmp_path / "t")})
    tok = AutoTokenizer.from_pretrained(tmp_path / "ul2")
    blocks = [{"input_ids": list(range(100, 164)), "labels": list(range(100, 164))}] * 4
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    trainer = pretrain.UL2Trainer(
        model=AutoModelForCausalLM.from_pretrained(tmp_path / "ul2"), args=training_args,
        train_dataset=Dataset.from_list(blocks), eval_dataset=Dataset.from_list(blocks),
        data_collator=UL2Collator(tok, args.ul2_denoisers, 64), processing_class=tok)
    train = next(iter(trainer.get_train_dataloader()))
    held_out = next(iter(trainer.get_eval_dataloader()))
    modes = {tok.convert_tokens_to_ids(t) for t in MODE_TOKENS.values()}
    assert set(train["input_ids"][:, 0].tolist()) <= modes and (train["labels"] == -100).any()
    assert held_out["input_ids"][0].tolist() == list(range(100, 164))  # held-out blocks as they are, every token
    assert (held_out["labels"] == held_out["input_ids"]).all()


@pytest.mark.parametrize("keys, message", [
    ({"objective": "ul3"}, "objective: 'ul3' is not one of causal, ul2"),
    ({"objective": "ul2"}, "ul2: expected"),
    ({"ul2": {"denoisers": [R]}}, "ul2: set, but objective is causal"),
    ({"objective": "ul2", "ul2": {"denoisers": [{**R, "span_mean": 3}]}}, r"ul2.denoisers\[0\]: expected"),
    ({"objective": "ul2", "ul2": {"denoisers": [R, {**X, "mode": "Q"}]}}, r"ul2.denoisers\[1\]: expected"),
    ({"objective": "ul2", "ul2": {"denoisers": [{**R, "corruption_rate": 1.5}]}}, "corruption_rate: 1.5 must be"),
    ({"objective": "ul2", "ul2": {"denoisers": [{**S, "mean_span": 3}]}}, "S-denoiser .* has no spans"),
    ({"objective": "ul2", "ul2": {"denoisers": [{**X, "mean_span": None}]}}, "mean_span: None must be"),
    ({"objective": "ul2", "ul2": {"denoisers": [{**R, "weight": 0}]}}, "weight: 0 must be > 0"),
    ({"objective": "ul2", "ul2": {"denoisers": [R]}, "token_selection": {"reference_model": "ref", "ratio": 0.5}},
     "mutually exclusive"),
])
def test_bad_objective_keys_fail_when_the_recipe_is_parsed(keys, message):
    # the tokenizer and data do not exist: the error comes from parsing, before anything is loaded
    with pytest.raises(RecipeError, match=message):
        load_recipe("pretrain", {"tokenizer_name_or_path": "/nonexistent", "dataset_name": "/nonexistent",
                                 "output_dir": "/nonexistent", **keys})


def test_defaults_and_a_block_too_short():
    assert check_objective("causal", None) is None
    assert check_objective("ul2", {"denoisers": [{"mode": "S", "corruption_rate": 0.25}]}) == [
        {"mode": "S", "mean_span": None, "corruption_rate": 0.25, "weight": 1.0}]
    with pytest.raises(RecipeError, match="block_size 4: too short"):
        text_length(4, {"mode": "X", "mean_span": 1, "corruption_rate": 0.9})


def test_real_scale_variant_prints_its_plan_offline(tmp_path, capsys):
    from llm_recipes.scripts import pretrain

    for arm in ("causal", "ul2"):
        changes = {"objective": "causal", "ul2": None} if arm == "causal" else {}
        counts = pretrain.main(*load_recipe("pretrain", os.path.join(REPO, "recipes", "ul2-ja-1b", "pretrain.yaml"),
                                            dry_run=True, output_dir=str(tmp_path / arm), **changes))
        assert 1.3e9 < counts["parameters"] < 1.45e9 and counts["stage_steps"] == [100000]
    out = capsys.readouterr().out
    assert "ul2 X(mean_span=3, rate=0.5), 13% of blocks: 3070 of 4096 text tokens, 512 spans" in out
    assert "ul2 tokens: 516 ([R], [X], [S], [SEP], <extra_id_0> ...)" in out and out.count("ul2 tokens") == 1
    assert not (tmp_path / "ul2").exists()
