"""Unit tests of each stage's own logic on tiny inputs: packing, tokenizer training, chat-template masks, reports."""
import json

import pytest
from datasets import Dataset

from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import read_report, write_report
from llm_recipes.reporting.stats import binomial_p_above
from llm_recipes.scripts import pretrain
from llm_recipes.scripts import tokenizer as tokenizer_stage
from llm_recipes.training.token_blocks import pack


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    docs = root / "docs.jsonl"
    texts = ["トコワ村の名産はブドウです。", "The flag of Tokowa village is red.", "質問:名産は?\n答え:ブドウです。"] * 20
    docs.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    args = tokenizer_stage.TokenizerArguments(input_path=str(docs), output_dir=str(root / "tok"), vocab_size=400)
    report = tokenizer_stage.main(args)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(root / "tok"), report, args


def test_tokenizer_round_trips_and_has_special_tokens(tiny_tokenizer):
    tok, report, _ = tiny_tokenizer
    assert report["round_trip_exact"] == 1.0 and report["vocab_size"] == len(tok)
    text = "未知の漢字「鬱」も😀も落とさない。"
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text  # byte-level: nothing is lost
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token and tok.bos_token
    assert "<|im_end|>" in tok.get_vocab()


def test_tokenizer_is_deterministic(tiny_tokenizer, tmp_path):
    tok, _, args = tiny_tokenizer
    again = tokenizer_stage.main(tokenizer_stage.TokenizerArguments(
        input_path=args.input_path, output_dir=str(tmp_path / "again"), vocab_size=args.vocab_size))
    assert json.load(open(tmp_path / "again" / "tokenizer.json"))["model"] == json.load(
        open(f"{args.output_dir}/tokenizer.json"))["model"]
    assert again["vocab_size"] == len(tok)


def test_tokenizer_rejects_vocab_smaller_than_alphabet(tiny_tokenizer, tmp_path):
    _, _, args = tiny_tokenizer
    with pytest.raises(RecipeError, match="vocab_size"):
        tokenizer_stage.main(tokenizer_stage.TokenizerArguments(input_path=args.input_path,
                                                                output_dir=str(tmp_path / "t"), vocab_size=100))


def test_chat_template_marks_only_assistant_tokens(tiny_tokenizer):
    tok, _, _ = tiny_tokenizer
    messages = [{"role": "system", "content": "あなたは村の案内係です。"}, {"role": "user", "content": "名産は?"},
                {"role": "assistant", "content": "ブドウです。"}]
    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    trained = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(trained) == "ブドウです。<|im_end|>"
    prompt = tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_pack_puts_eos_between_documents_and_makes_full_blocks(tiny_tokenizer):
    tok, _, _ = tiny_tokenizer
    ds = Dataset.from_dict({"text": ["トコワ村の名産はブドウです。"] * 7 + ["The flag is red."] * 7})
    blocks = pack(ds, tok, "text", block_size=16)
    assert len(blocks) >= 2 and all(len(b) == 16 for b in blocks["input_ids"])
    flat = [t for b in blocks["input_ids"] for t in b]
    assert flat.count(tok.eos_token_id) >= 6
    assert blocks["labels"] == blocks["input_ids"]


@pytest.mark.parametrize("shape, key", [
    ({"hidden_size": 130, "num_attention_heads": 4}, "hidden_size"),
    ({"num_attention_heads": 4, "num_key_value_heads": 3}, "num_key_value_heads"),
    ({"block_size": 1024, "max_position_embeddings": 512}, "block_size"),
])
def test_impossible_shapes_are_refused(shape, key):
    args = pretrain.PretrainArguments(dataset_name="x", tokenizer_name_or_path="y", **shape)
    with pytest.raises(RecipeError, match=key):
        pretrain.check_shape(args)


def test_report_is_written_atomically_and_read_back(tmp_path):
    write_report(tmp_path, "x", {"a": 1}, wall_time_s=1.23)
    assert read_report(tmp_path)["a"] == 1 and not list(tmp_path.glob(".*tmp"))


def test_binomial_test():
    assert binomial_p_above(0, 10, 0.2) == pytest.approx(1.0)
    assert binomial_p_above(10, 10, 0.5) == pytest.approx(0.5 ** 10)
    assert binomial_p_above(17, 45, 0.2) < 0.01 < binomial_p_above(12, 45, 0.2)
