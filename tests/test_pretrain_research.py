"""Pretraining research tools: the scaling-law fit recovers known parameters; sweeps, budgets and shapes."""
import json
import os

import numpy as np
import pytest
from conftest import REPO

from llm_recipes.config import load_recipe
from llm_recipes.errors import RecipeError
from llm_recipes.research import scaling_law
from llm_recipes.scripts import pretrain
from llm_recipes.training.token_blocks import pack

TRUE = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Chinchilla's published fit


def synthetic(noise=0.002, seed=0, repeats=1):
    rng = np.random.default_rng(seed)
    n = np.repeat(np.geomspace(1e6, 1e9, 6), 4 * repeats)
    d = np.tile(np.geomspace(1e8, 1e11, 4), 6 * repeats)
    loss = TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]
    return n, d, loss * np.exp(rng.normal(0, noise, loss.shape))


def test_scaling_law_fit_recovers_known_parameters_inside_its_bootstrap_intervals(tmp_path):
    """Noisy synthetic runs (1 % noise on the loss, as seeds give) from Chinchilla's law: the fit lands near the truth
    and the bootstrap's reported 95 % intervals hold the true alpha, beta, E and compute-optimal tokens/parameter."""
    n, d, loss = synthetic(noise=0.01)
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps({"parameters": a, "tokens_seen": b, "eval_loss": c}) + "\n"
                            for a, b, c in zip(n, d, loss)))
    law, optimal = scaling_law.main([str(path), "--budget", "1e21", "--bootstrap", "200"])
    assert law["alpha"] == pytest.approx(TRUE["alpha"], abs=0.03) and law["beta"] == pytest.approx(TRUE["beta"], abs=0.03)
    assert law["E"] == pytest.approx(TRUE["E"], rel=0.05)
    saved = json.loads((tmp_path / "scaling_law.json").read_text())
    assert saved["bootstrap_resamples"] == 200
    for key in ("alpha", "beta", "E"):
        low, high = saved["intervals"][key]
        assert low < TRUE[key] < high and low < law[key] < high, (key, low, high)
    truth = scaling_law.compute_optimal(TRUE, 1e21)
    at_budget = optimal[1]  # optimal[0] is the runs' own largest compute
    assert at_budget["flops"] == 1e21 and at_budget["parameters"] * at_budget["tokens"] * 6 == pytest.approx(1e21)
    low, high = at_budget["intervals"]["tokens_per_parameter"]
    assert low < truth["tokens_per_parameter"] < high
    assert optimal[0]["flops"] == pytest.approx(6 * 1e9 * 1e11)
    assert (tmp_path / "scaling_law_contours.png").stat().st_size > 0 and (tmp_path / "scaling_law.png").exists()
    report = (tmp_path / "scaling_law.md").read_text()
    assert "Chinchilla (Hoffmann 2022)" in report and "Epoch (Besiroglu 2024)" in report and "times the ~20" in report


def test_scaling_law_needs_enough_points(tmp_path):
    path = tmp_path / "few.jsonl"
    path.write_text(json.dumps({"parameters": 1, "tokens_seen": 1, "eval_loss": 1}) + "\n")
    with pytest.raises(Exception, match="at least 5"):
        scaling_law.main([str(path)])
    n, d, loss = synthetic()
    path.write_text("".join(json.dumps({"parameters": a, "tokens_seen": b, "eval_loss": c}) + "\n"
                            for a, b, c in zip(n, d, loss)))
    with pytest.raises(Exception, match="at least 200 resamples"):
        scaling_law.main([str(path), "--bootstrap", "50"])


DOCS = os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl")


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    from llm_recipes.scripts import tokenizer as tok_stage

    out = tmp_path_factory.mktemp("ptok") / "tok"
    tok_stage.main(tok_stage.TokenizerArguments(input_path=DOCS, output_dir=str(out), vocab_size=600))
    return str(out)


def recipe(tok_dir, out, **kw):
    return load_recipe(pretrain.ARGUMENTS, os.path.join(REPO, "recipes", "tiny", "pretrain.yaml"),
                       tokenizer_name_or_path=tok_dir, dataset_name=DOCS, output_dir=str(out), **kw)


@pytest.mark.parametrize("family", ["llama", "gpt2", "mixtral", "qwen2_moe", "mamba"])
def test_every_family_builds_on_the_meta_device(tok_dir, tmp_path, family):
    counts = pretrain.main(*recipe(tok_dir, tmp_path, architecture=family, dry_run=True))
    assert counts["parameters"] > counts["non_embedding_parameters"] > 0
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize("family", ["gpt2", "mixtral"])
def test_alternative_families_train(tok_dir, tmp_path, family):
    report = pretrain.main(*recipe(tok_dir, tmp_path, architecture=family, max_steps=6, logging_steps=2,
                                   save_steps=100, hidden_size=64, intermediate_size=128))
    assert report["architecture"] == family and report["loss_last"] < report["loss_first"]


def test_gpu_recipes_dry_run_offline_with_counts_and_stage_plan(tmp_path, capsys):
    counts = pretrain.main(*load_recipe(pretrain.ARGUMENTS, os.path.join(REPO, "recipes", "ja-1b", "pretrain.yaml"),
                                        output_dir=str(tmp_path / "a"), dry_run=True))
    assert 1.3e9 < counts["parameters"] < 1.45e9 and counts["stage_steps"] == [100000]
    # two stages, each a weighted mixture of hub datasets; token budgets become steps at 4 x 8 x 4096 tokens per step
    plan = pretrain.main(*load_recipe(pretrain.ARGUMENTS, os.path.join(REPO, "recipes", "cpt-en-code-then-ja",
                                                                       "pretrain.yaml"),
                                      output_dir=str(tmp_path / "b"), dry_run=True))
    assert plan["stage_steps"] == [-(-2_000_000_000 // (32 * 4096)), -(-8_000_000_000 // (32 * 4096))]
    out = capsys.readouterr().out
    assert "HuggingFaceFW/fineweb-2:jpn_Jpan x0.9" in out and "hub: not read in a dry run" in out
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_parameter_budget_sets_the_width(tok_dir, tmp_path):
    for layers in (2, 8):
        counts = pretrain.main(*recipe(tok_dir, tmp_path, num_hidden_layers=layers, dry_run=True,
                                       target_non_embedding_parameters=400_000))
        assert counts["non_embedding_parameters"] == pytest.approx(400_000, rel=0.15)


def test_data_stages_and_throughput_metrics(tok_dir, tmp_path):
    qa = os.path.join(REPO, "recipes", "tiny", "data", "pit_train_qa.jsonl")
    args, targs = recipe(tok_dir, tmp_path, max_steps=5, logging_steps=1, save_steps=100,
                         per_device_train_batch_size=4, peak_tflops=1.0)
    # short blocks before long ones, the first stage budgeted in tokens: 512 tokens / (4 x 32 per step) = 4 steps
    # then a weighted mixture of documents and QA
    args.data_stages = [{"dataset_name": qa, "max_tokens": 512, "block_size": 32},
                        {"datasets": [{"path": DOCS, "weight": 3}, {"path": qa, "weight": 1}], "max_steps": 6}]
    report = pretrain.main(args, targs)
    assert report["steps"] == 10 and report["tokens_seen"] == 4 * 4 * 32 + 6 * 4 * 128
    assert (tmp_path / "stage_0").is_dir() and (tmp_path / "stage_1").is_dir() and (tmp_path / "model.safetensors").exists()
    assert report["tokens_per_second"] > 0 and 0 < report["mfu"] < 1 and report["tokens_per_second_steady"] > 0
    assert report["flops_per_token"] == 6 * report["non_embedding_parameters"] + 12 * 4 * 128 * 128


def test_dropping_the_short_last_batch_keeps_every_eval_block(tok_dir, tmp_path):
    # advised with torch_compile; Trainer alone would drop all 11 held-out blocks (fewer than one eval batch of 64)
    kept = pretrain.main(*recipe(tok_dir, tmp_path / "keep", max_steps=2, per_device_eval_batch_size=64))
    dropped = pretrain.main(*recipe(tok_dir, tmp_path / "drop", max_steps=2, per_device_eval_batch_size=64,
                                    dataloader_drop_last=True))
    assert dropped["eval_loss"] == pytest.approx(kept["eval_loss"], rel=1e-4)


def test_bad_data_stages_fail_before_training(tok_dir, tmp_path):
    for stage, message in [({"dataset_name": DOCS, "max_steps": 2, "max_tokens": 9}, "max_steps or max_tokens"),
                           ({"dataset": DOCS}, r"got keys \['dataset'\]"),
                           ({"dataset_name": DOCS, "block_size": 4096}, "block_size 4096 exceeds"),
                           ({"dataset_name": DOCS, "datasets": [{"path": DOCS}]}, "dataset_name or datasets"),
                           ({"datasets": [{"path": DOCS, "weight": 0}]}, r"datasets\[0\]: expected \{path, weight > 0"),
                           ({"datasets": [DOCS]}, r"data_stages\[0\].datasets\[0\]")]:
        args, targs = recipe(tok_dir, tmp_path)
        args.data_stages = [stage]
        with pytest.raises(RecipeError, match=message):
            pretrain.main(args, targs)


def test_stage_mixture_interleaves_blocks_by_weight_and_uses_every_block(tok_dir, tmp_path):
    from collections import Counter

    from transformers import AutoTokenizer

    from llm_recipes.data import load_records
    from llm_recipes.training.token_blocks import stage_blocks

    qa = os.path.join(REPO, "recipes", "tiny", "data", "pit_train_qa.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    args, targs = recipe(tok_dir, tmp_path)
    docs_blocks, qa_blocks = (pack(load_records(p, text_keys=["text"]), tokenizer, "text", 64) for p in (DOCS, qa))
    mixed, held_out = stage_blocks(args, {"datasets": [{"path": DOCS, "weight": 1}, {"path": qa, "weight": 3}]},
                                   tokenizer, 64, targs)
    from_docs = {tuple(b) for b in docs_blocks["input_ids"]}
    from_qa = {tuple(b) for b in qa_blocks["input_ids"]}
    seen, held = [tuple(b) for b in mixed["input_ids"]], {tuple(b) for b in held_out["input_ids"]}
    in_docs = sum(b in from_docs for b in seen)
    assert in_docs + sum(b in from_qa for b in seen) == len(seen)  # every block comes from one of the sources
    assert 0.2 < in_docs / len(seen) < 0.3  # weight 1 of 4
    # each source holds blocks out and none leaks into training (the raw sample plants duplicate documents, whose
    # identical blocks may land on both sides)
    repeated = {b for b, n in Counter(map(tuple, [*docs_blocks["input_ids"], *qa_blocks["input_ids"]])).items() if n > 1}
    assert held & from_docs and held & from_qa and held & set(seen) <= repeated
    assert set(seen) | held == from_docs | from_qa  # every block of every source is used


def test_packed_blocks_are_cached_by_data_tokenizer_and_block_size(tok_dir):
    from transformers import AutoTokenizer

    from llm_recipes.data import load_records

    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    raw = load_records(DOCS, text_keys=["text"])
    first, again = pack(raw, tokenizer, "text", 64), pack(raw, tokenizer, "text", 64)
    other = pack(raw, tokenizer, "text", 32)
    assert first.cache_files[0]["filename"] == again.cache_files[0]["filename"]
    assert os.path.basename(first.cache_files[0]["filename"]).startswith("pretrain-")
    assert other.cache_files[0]["filename"] != first.cache_files[0]["filename"]
    assert first["input_ids"] == again["input_ids"] and len(other) > len(first)
