"""What breaks outside the tiny world: copied recipes, model loading keys (QLoRA), offline hub names, secrets in
training arguments, MoE FLOPs, statistics at real sizes."""
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from llm_recipes.config import load_recipe
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.stats import binomial_p_above, proportion_interval, t_interval, verdict


def run_recipe(cwd, *args):
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", "run_recipe.py"), *args, "--launcher",
                           "python"], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})


def test_a_copied_recipe_runs_as_is_and_a_changed_one_is_never_taken_for_finished(tmp_path):
    mine = tmp_path / "recipes" / "mine"
    shutil.copytree(os.path.join(REPO, "recipes", "tiny"), mine)
    first = run_recipe(tmp_path, "recipes/mine", "--stages", "corpus,tokenizer")  # from another working directory
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "outputs" / "mine"  # run_dir: outputs/{recipe_name}
    docs = (mine / "data" / "docs.jsonl").read_text(encoding="utf-8").splitlines()
    assert yaml.safe_load((out / "corpus" / "report.json").read_text())["read"] == len(docs)

    (mine / "data" / "docs.jsonl").write_text("\n".join(docs[:150]) + "\n", encoding="utf-8")  # data edited in place
    stale = run_recipe(tmp_path, "recipes/mine", "--stages", "corpus,tokenizer")
    assert stale.returncode == 2 and "input_files_sha256" in stale.stderr and "--force" in stale.stderr
    assert len(stale.stderr.strip().splitlines()) == 1, stale.stderr

    (mine / "data" / "docs.jsonl").write_text("\n".join(docs) + "\n", encoding="utf-8")
    config = yaml.safe_load((mine / "tokenizer.yaml").read_text())
    (mine / "tokenizer.yaml").write_text(yaml.safe_dump({**config, "vocab_size": 800}), encoding="utf-8")
    changed = run_recipe(tmp_path, "recipes/mine", "--stages", "corpus,tokenizer")
    assert changed.returncode == 2 and "vocab_size: 1500 -> 800" in changed.stderr, changed.stderr
    assert "stage corpus: complete with this configuration" in changed.stdout  # the unchanged stage is not redone

    forced = run_recipe(tmp_path, "recipes/mine", "--stages", "tokenizer", "--force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert yaml.safe_load((out / "tokenizer" / "report.json").read_text())["vocab_size"] == 800


def test_pretrain_stage_arguments_keep_the_hub_token():
    from llm_recipes.scripts import pretrain

    _, training_args = load_recipe("pretrain", "recipes/tiny/pretrain.yaml", hub_token="hf_secret", output_dir="o")
    copy = pretrain.stage_training_args(training_args, "o/stage_1", 7)
    assert (copy.hub_token, copy.output_dir, copy.max_steps) == ("hf_secret", "o/stage_1", 7)
    assert training_args.to_dict()["hub_token"] == "<HUB_TOKEN>"  # why to_dict() must not rebuild the arguments


def test_moe_flops_count_only_the_active_experts():
    import torch
    from transformers import AutoModelForCausalLM, MixtralConfig

    from llm_recipes.training.modeling import count_parameters, flops_per_token

    config = MixtralConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=4, num_key_value_heads=4, num_local_experts=4, num_experts_per_tok=2)
    with torch.device("meta"):
        counts = count_parameters(AutoModelForCausalLM.from_config(config))
    # by hand: attention 4*32*32 + router 4*32 + experts (gate_up 4*128*32 + down 4*32*64) * 2/4 + 3 norms of 32
    # + untied lm_head 100*32
    active = 4 * 32 * 32 + 4 * 32 + (4 * 128 * 32 + 4 * 32 * 64) // 2 + 3 * 32 + 100 * 32
    assert counts["active_non_embedding_parameters"] == active == 19808
    assert counts["non_embedding_parameters"] == active + (4 * 128 * 32 + 4 * 32 * 64) // 2
    assert flops_per_token(counts["active_non_embedding_parameters"], 1, 32, 128) == 6 * 19808 + 12 * 32 * 128


def test_load_in_4bit_reaches_from_pretrained_as_a_bitsandbytes_config(model_dir, monkeypatch):
    import importlib.util

    import torch
    import transformers
    from transformers import BitsAndBytesConfig
    from trl import ModelConfig

    from llm_recipes.training.common import load_model

    args = ModelConfig(model_name_or_path=str(model_dir), load_in_4bit=True, use_peft=True, dtype="bfloat16",
                       attn_implementation="sdpa", model_revision="main")
    with pytest.raises(RecipeError, match="load_in_4bit: quantized .* needs a CUDA GPU"):  # this machine: no GPU
        load_model(args)
    seen = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine with bitsandbytes
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "bitsandbytes" else real_find_spec(name, *a))
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda path, **kwargs: seen.update(kwargs) or "model")
    model, _ = load_model(args, training_args=type("T", (), {"model_init_kwargs": {"low_cpu_mem_usage": True}})())
    quantization = seen["quantization_config"]
    assert model == "model" and isinstance(quantization, BitsAndBytesConfig)
    assert quantization.load_in_4bit and quantization.bnb_4bit_quant_type == "nf4"
    assert quantization.bnb_4bit_compute_dtype == torch.bfloat16
    assert seen["device_map"] == {"": 0} and seen["revision"] == "main" and seen["dtype"] == "bfloat16"
    assert seen["attn_implementation"] == "sdpa" and seen["low_cpu_mem_usage"] is True


def test_hub_names_that_are_not_cached_fail_in_one_line_offline(tmp_path, monkeypatch, capsys):
    from llm_recipes.config import parse, run
    from llm_recipes.scripts import sft

    recipe = tmp_path / "sft.yaml"
    recipe.write_text(yaml.safe_dump({"model_name_or_path": "nobody-here/no-such-model-123", "dataset_name": "x/y",
                                      "output_dir": str(tmp_path / "out")}))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(SystemExit) as exited:
        run(sft.main, lambda: parse(sft.ARGUMENTS, ["--config", str(recipe)]))
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and len(err.splitlines()) == 1
    assert "nobody-here/no-such-model-123 is a hub model that is not in the local cache" in err
    from llm_recipes.data import load_records

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(RecipeError, match="nobody-here/no-such-data is a hub dataset that is not in the local cache"):
        load_records("nobody-here/no-such-data")


def test_push_to_hub_needs_a_token_and_the_dry_run_names_the_repository(tmp_path, monkeypatch, capsys):
    from llm_recipes.scripts import sft

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no saved login
    monkeypatch.delenv("HF_TOKEN", raising=False)
    keys = dict(push_to_hub=True, hub_model_id="my-org/tiny-sft", output_dir=str(tmp_path / "o"), dry_run=True)
    with pytest.raises(RecipeError, match="push_to_hub: no Hugging Face token"):
        sft.main(*load_recipe("sft", "recipes/tiny/sft.yaml", **keys))
    monkeypatch.setenv("HF_TOKEN", "hf_dummy")
    sft.main(*load_recipe("sft", "recipes/tiny/sft.yaml", **keys))
    assert "| push to hub | my-org/tiny-sft |" in capsys.readouterr().out


def test_binomial_test_and_intervals_at_benchmark_size():
    from scipy import stats

    assert binomial_p_above(2000, 8939, 0.2) == pytest.approx(stats.binomtest(2000, 8939, 0.2, "greater").pvalue)
    assert 0.4 < binomial_p_above(1788, 8939, 0.2) < 0.6 and binomial_p_above(2100, 8939, 0.2) < 1e-12
    low, high = proportion_interval(1788, 8939)
    assert low < 0.2 < high and high - low < 0.02


def test_verdicts_are_computed_from_paired_seeds():
    """Known differences: clearly positive, clearly negative, noise, and a lower-is-better metric."""
    assert verdict([0.61, 0.63, 0.62], [0.50, 0.51, 0.49])["verdict"] == "reproduced"
    assert verdict([0.40, 0.41, 0.42], [0.50, 0.52, 0.51])["verdict"] == "contradicted"
    noise = verdict([0.50, 0.56, 0.47, 0.53], [0.52, 0.49, 0.55, 0.50])
    assert noise["verdict"] == "inconclusive" and noise["low"] < 0 < noise["high"] and noise["seeds"] == 4
    assert verdict([1.2, 1.21, 1.19], [1.5, 1.52, 1.49], higher_is_better=False)["verdict"] == "reproduced"
    assert verdict([0.9], [0.1])["verdict"] == "inconclusive"  # one seed proves nothing
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and low == pytest.approx(2 - 4.303 * 1 / 3 ** 0.5, abs=1e-3)
