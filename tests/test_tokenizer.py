"""Tokenizer stage: the three model types, metrics, determinism, the vocabulary sweep, errors, and vocabulary
expansion of a small local Llama model."""
import hashlib
import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

from llm_recipes.errors import RecipeError
from llm_recipes.scripts import expand_vocab
from llm_recipes.scripts import tokenizer as stage

DOCS = os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl")
UNSEEN = "未知の漢字「鬱」や「麒麟」、絵文字😀、and English words."


def train(tmp_path, **kw):
    args = stage.TokenizerArguments(input_path=DOCS, output_dir=str(tmp_path / "tok"), vocab_size=800, **kw)
    report = stage.main(args)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(args.output_dir), report


@pytest.mark.parametrize("model", ["bytelevel_bpe", "bpe", "unigram"])
def test_models_round_trip_and_report_metrics(tmp_path, model):
    tok, report = train(tmp_path, model=model)
    assert report["round_trip_exact"] == 1.0
    ids = tok(UNSEEN, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == UNSEEN  # byte-level or byte fallback: no character is lost
    assert tok.unk_token_id not in ids
    for key in ("chars_per_token", "bytes_per_token", "byte_fallback_rate", "unknown_rate", "kanji_coverage",
                "kanji_tokens", "hiragana_tokens", "katakana_tokens", "tokens_per_document"):
        assert key in report, key
    assert report["chars_per_token"]["ja"] > 1.0 and report["kanji_tokens"] > 0
    assert "<|im_end|>" in tok.get_vocab() and tok.eos_token == "<|endoftext|>"


def test_byte_fallback_rate_counts_unseen_characters(tmp_path):
    from llm_recipes.tokenizer.metrics import measure

    tok, _ = train(tmp_path, model="bpe")
    seen = measure(tok, ["トコワ村の名産はブドウです。"])
    unseen = measure(tok, ["鬱鬱鬱鬱"])
    assert seen["byte_fallback_rate"] == 0 and unseen["byte_fallback_rate"] == 1.0
    assert unseen["kanji_coverage"] == 0.0


@pytest.mark.parametrize("model", ["bytelevel_bpe", "bpe"])
def test_training_is_deterministic(tmp_path, model):
    digests = []
    for run in ("a", "b"):
        args = stage.TokenizerArguments(input_path=DOCS, output_dir=str(tmp_path / run), vocab_size=800, model=model)
        stage.main(args)
        digests.append(hashlib.sha256((tmp_path / run / "tokenizer.json").read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_vocab_sweep_writes_table_and_plot(tmp_path):
    args = stage.TokenizerArguments(input_path=DOCS, output_dir=str(tmp_path / "sweep"), model="bpe",
                                    vocab_sizes=[400, 800])
    report = stage.main(args)
    assert set(report["sweep"]) == {400, 800}
    assert report["sweep"][800]["chars_per_token"]["ja"] > report["sweep"][400]["chars_per_token"]["ja"]
    assert (tmp_path / "sweep" / "vocab_sweep.png").stat().st_size > 0
    assert (tmp_path / "sweep" / "vocab_800" / "tokenizer.json").exists()


def test_bad_input(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(RecipeError, match="no"):
        stage.main(stage.TokenizerArguments(input_path=str(empty), output_dir=str(tmp_path / "o")))
    with pytest.raises(RecipeError, match="special tokens"):
        stage.main(stage.TokenizerArguments(input_path=DOCS, output_dir=str(tmp_path / "o"),
                                            additional_special_tokens=[]))
    with pytest.raises(RecipeError, match="vocab_size"):
        stage.main(stage.TokenizerArguments(input_path=DOCS, output_dir=str(tmp_path / "o"), model="bpe",
                                            vocab_size=200))


@pytest.fixture(scope="module")
def small_llama(tmp_path_factory):
    """A small random Llama model whose tokenizer was trained on English text only."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("llama")
    english = root / "en.jsonl"
    rows = [json.loads(line) for line in open(DOCS, encoding="utf-8")]
    english.write_text("".join(json.dumps(r) + "\n" for r in rows if r["text"].isascii()), encoding="utf-8")
    stage.main(stage.TokenizerArguments(input_path=str(english), output_dir=str(root / "base"), vocab_size=600))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(root / "base")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(root / "base")
    return root


def test_vocabulary_expansion(small_llama, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "expanded"
    report = expand_vocab.main(expand_vocab.ExpandArguments(
        model_name_or_path=str(small_llama / "base"), input_path=DOCS, output_dir=str(out), num_new_tokens=100,
        candidate_vocab_size=1500))
    assert report["new_tokens"] > 10
    assert report["ja_chars_per_token_after"] > report["ja_chars_per_token_before"]

    code = f"from transformers import AutoModelForCausalLM, AutoTokenizer\n" \
           f"AutoModelForCausalLM.from_pretrained({str(out)!r}); AutoTokenizer.from_pretrained({str(out)!r})\n" \
           f"print('OK')"
    assert "OK" in subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout

    old_tok, new_tok = AutoTokenizer.from_pretrained(small_llama / "base"), AutoTokenizer.from_pretrained(out)
    old, new = AutoModelForCausalLM.from_pretrained(small_llama / "base"), AutoModelForCausalLM.from_pretrained(out)
    text = "The specialty of the village is apples and the flag is red."
    ids = new_tok(text, return_tensors="pt")["input_ids"]
    assert ids.max() < len(old_tok) and ids.tolist() == old_tok(text, return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        before, after = old(ids).logits, new(ids).logits
    assert torch.equal(before, after[..., :before.shape[-1]])
    for piece in [p for p in report["examples"] if " " not in p][:10]:  # text (a character fragment shows as hex)
        (new_id,) = new_tok(piece, add_special_tokens=False)["input_ids"]  # one new token (its merge is reachable)
        pieces = old_tok(piece, add_special_tokens=False)["input_ids"]
        expected = old.get_input_embeddings().weight[pieces].mean(0)
        assert torch.allclose(new.get_input_embeddings().weight[new_id], expected)
        assert torch.allclose(new.get_output_embeddings().weight[new_id], old.lm_head.weight[pieces].mean(0))


def test_expansion_of_a_byte_fallback_bpe_adds_characters_and_keeps_english(tmp_path):
    """A Metaspace + byte-fallback BPE (Llama 2 / SentencePiece style): a new character replaces its <0xXX> pieces
    without a merge, longer pieces get merges; English encodes as before and Japanese round-trips."""
    import json as json_

    from tokenizers import Tokenizer

    from llm_recipes.tokenizer.expansion import expand, train_candidates

    english = tmp_path / "en.jsonl"
    rows = [json_.loads(line) for line in open(DOCS, encoding="utf-8")]
    english.write_text("".join(json_.dumps(r) + "\n" for r in rows if r["text"].isascii()), encoding="utf-8")
    stage.main(stage.TokenizerArguments(input_path=str(english), output_dir=str(tmp_path / "base"), vocab_size=600,
                                        model="bpe"))
    spec = json_.loads(open(tmp_path / "base" / "tokenizer.json", encoding="utf-8").read())
    japanese = [r["text"] for r in rows if not r["text"].isascii()]
    new_spec, new, _ = expand(spec, train_candidates(spec, japanese, 1500), 300)
    old, grown = Tokenizer.from_str(json_.dumps(spec)), Tokenizer.from_str(json_.dumps(new_spec))
    assert len(new) > 50 and any(len(p) == 1 for p, _, _ in new) and any(len(p) > 1 for p, _, _ in new)
    text = "The specialty of the village is apples and the flag is red."
    assert grown.encode(text).ids == old.encode(text).ids
    for doc in japanese[:50]:
        assert grown.decode(grown.encode(doc).ids) == doc
    assert sum(len(grown.encode(d).ids) for d in japanese) < 0.8 * sum(len(old.encode(d).ids) for d in japanese)
