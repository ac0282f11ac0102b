"""Instruction tuning and preference optimisation: data formats, assistant-only labels in the trainer's batches, every
DPO loss type and KTO from plain and HH data, LoRA DPO, and the data-efficiency sweep."""
import json
import os

import pytest
import yaml
from conftest import REPO, run_script
from datasets import Dataset

from llm_recipes.config import load_recipe, parse
from llm_recipes.errors import RecipeError
from llm_recipes.scripts import dpo, kto, sft
from llm_recipes.training.data_formats import for_kto, for_preference, for_sft

DATA = os.path.join(REPO, "recipes", "tiny", "data")


def test_formats_are_detected_and_converted():
    dolly = Dataset.from_list([{"instruction": "要約して", "context": "長い文章", "response": "短い文章", "category": "x"}])
    converted, _ = for_sft(dolly, "dolly")
    assert converted[0]["messages"] == [{"role": "user", "content": "要約して\n\n長い文章"},
                                        {"role": "assistant", "content": "短い文章"}]
    hh = Dataset.from_list([json.loads(open(os.path.join(DATA, "dpo_hh.jsonl")).readline())])
    pairs, _ = for_preference(hh, "hh")
    assert [m["role"] for m in pairs[0]["prompt"]] == ["user", "assistant", "user"]
    assert pairs[0]["chosen"][0]["role"] == "assistant" and pairs[0]["chosen"] != pairs[0]["rejected"]
    unpaired, _ = for_kto(hh, "hh")
    assert [r["label"] for r in unpaired] == [True, False]
    with pytest.raises(RecipeError, match="match no known format"):
        for_sft(Dataset.from_list([{"question": "q", "answer": "a"}]), "odd.jsonl")
    with pytest.raises(RecipeError, match="preference data, not SFT data"):
        for_sft(pairs, "pairs")


def test_bad_records_are_counted_and_dropped_when_the_rule_says_so():
    rows = [{"prompt": "q", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "a", "rejected": "a"},
            {"prompt": "q", "chosen": "", "rejected": "b"}]
    with pytest.raises(RecipeError, match=r"record 2 has chosen == rejected \(2 bad"):
        for_preference(Dataset.from_list(rows), "p.jsonl")
    kept, dropped = for_preference(Dataset.from_list(rows), "p.jsonl", rule="drop")
    assert len(kept) == 1 and dropped == 2


def test_sft_batches_train_on_assistant_tokens_only(model_dir, tmp_path):
    from trl import SFTTrainer

    args, training_args, model_args = load_recipe(sft.ARGUMENTS, os.path.join(REPO, "recipes", "tiny", "sft.yaml"),
                                                  model_name_or_path=str(model_dir), output_dir=str(tmp_path))
    from llm_recipes.training.common import load_model

    model, tokenizer = load_model(model_args)
    rows = [{"messages": [{"role": "system", "content": "あなたは案内係です。"}, {"role": "user", "content": "名産は?"},
                          {"role": "assistant", "content": "ブドウです。"}]}] * 4
    trainer = SFTTrainer(model=model, args=training_args, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    for ids, labels in zip(batch["input_ids"], batch["labels"]):
        trained = [int(t) for t, label in zip(ids, labels) if label != -100]
        assert trainer.processing_class.decode(trained) == "ブドウです。<|im_end|>"
    assert trainer.processing_class.eos_token == "<|im_end|>"
    assert trainer.model.generation_config.eos_token_id == trainer.processing_class.eos_token_id or \
        trainer.processing_class.eos_token_id in trainer.model.generation_config.eos_token_id


@pytest.mark.parametrize("source", ["dpo.jsonl", "dpo_hh.jsonl"])
@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge"])
def test_dpo_loss_types_on_plain_and_hh_data(model_dir, tmp_path, source, loss_type):
    args, training_args, model_args = load_recipe(
        dpo.ARGUMENTS, os.path.join(REPO, "recipes", "dpo-data-efficiency", "dpo.yaml"),
        model_name_or_path=str(model_dir), output_dir=str(tmp_path), dataset_name=os.path.join(DATA, source),
        loss_type=loss_type, max_steps=2, logging_steps=1, per_device_train_batch_size=4)
    args.dataset_mixture = None
    report = dpo.main(args, training_args, model_args)
    assert report["loss_type"] == [loss_type] and report["steps"] == 2 and report["reward_accuracy"] is not None
    assert report["eval_pairs"] == 45


def test_dpo_reports_a_judged_win_rate_against_its_start(model_dir, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(open(os.path.join(REPO, "recipes", "dpo-data-efficiency", "judge_questions.jsonl"),
                                      encoding="utf-8").readlines()[:3]), encoding="utf-8")
    args, training_args, model_args = load_recipe(
        dpo.ARGUMENTS, os.path.join(REPO, "recipes", "dpo-data-efficiency", "dpo.yaml"),
        model_name_or_path=str(model_dir), output_dir=str(tmp_path / "dpo"), max_steps=1,
        per_device_train_batch_size=4, judge_questions=str(questions), judge_model_name_or_path=str(model_dir),
        max_new_tokens=4, judge_max_new_tokens=4)
    report = dpo.main(args, training_args, model_args)
    judged = report["judged"]
    assert judged["total"] == 3 and judged["win"] + judged["loss"] + judged["tie"] == 3
    assert report["win_rate_vs_start"] == (judged["win"] + 0.5 * judged["tie"]) / 3
    with pytest.raises(RecipeError, match="judge_model_name_or_path: model directory not found"):
        dpo.main(*load_recipe(dpo.ARGUMENTS, os.path.join(REPO, "recipes", "dpo-data-efficiency", "dpo.yaml"),
                              model_name_or_path=str(model_dir), output_dir=str(tmp_path / "dpo2"),
                              judge_questions=str(questions), judge_model_name_or_path="/nonexistent"))


@pytest.mark.parametrize("source", ["dpo.jsonl", "dpo_hh.jsonl"])
def test_kto_on_plain_and_hh_data(model_dir, tmp_path, source):
    args, training_args, model_args = load_recipe(
        kto.ARGUMENTS, os.path.join(REPO, "recipes", "dpo-data-efficiency", "kto.yaml"),
        model_name_or_path=str(model_dir), output_dir=str(tmp_path), dataset_name=os.path.join(DATA, source),
        max_steps=2, logging_steps=1, per_device_train_batch_size=4)
    args.dataset_mixture = None
    report = kto.main(args, training_args, model_args)
    assert report["steps"] == 2 and report["examples"] == 150
    # held-out pairs scored as DPO scores them (implicit reward against the same reference): a comparison row
    assert report["eval_pairs"] == 45 and 0 <= report["reward_accuracy"] <= 1 and report["reward_margin"] is not None


def test_fractions_of_a_source_are_nested_prefixes_of_one_shuffled_order():
    from llm_recipes.data import load_sources

    path = os.path.join(DATA, "dpo.jsonl")

    def prompts(weight, seed, subset_seed=None):
        ds, _, _ = load_sources(None, "train", [{"path": path, "weight": weight}], lambda d, n: for_preference(d, n),
                                seed, subset_seed)
        return {json.dumps(r["prompt"], ensure_ascii=False) + json.dumps(r["chosen"], ensure_ascii=False) for r in ds}

    sizes = [prompts(w, seed=3) for w in (0.2, 0.4, 0.6, 0.8, 1.0)]
    assert [len(s) for s in sizes] == [15, 30, 45, 60, 75]
    assert all(small < large for small, large in zip(sizes, sizes[1:]))  # 20 % inside 40 % inside ... inside 100 %
    assert prompts(0.2, seed=4) != sizes[0]  # another seed draws other (nested) subsets
    assert prompts(0.2, seed=4, subset_seed=3) == sizes[0]  # unless subset_seed fixes the order


def test_lora_dpo_changes_the_adapter_and_leaves_the_base_untouched(model_dir, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    before = {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(model_dir).state_dict().items()}
    args, training_args, model_args = load_recipe(
        dpo.ARGUMENTS, os.path.join(REPO, "recipes", "dpo-data-efficiency", "dpo.yaml"),
        model_name_or_path=str(model_dir), output_dir=str(tmp_path / "lora"),
        dataset_name=os.path.join(DATA, "dpo.jsonl"), use_peft=True, lora_r=4, lora_alpha=8, learning_rate=1e-2,
        max_steps=3, logging_steps=1, per_device_train_batch_size=4, merge_adapter=True)
    args.dataset_mixture, args.eval_dataset_name = None, None
    dpo.main(args, training_args, model_args)
    adapter = load_file(tmp_path / "lora" / "adapter_model.safetensors")
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # LoRA B starts at zero: non-zero means it trained
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), tmp_path / "lora")
    base = peft_model.get_base_model().state_dict()
    for name, value in before.items():
        key = name.replace(".weight", ".base_layer.weight") if name.replace(".weight", ".base_layer.weight") in base \
            else name
        assert torch.equal(base[key], value), name
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "lora" / "merged").state_dict()
    assert any(not torch.equal(merged[k], before[k]) for k in before)


@pytest.mark.slow  # ~20 s: in `make test-slow` (CI), keeping `make test` inside 10 minutes
def test_data_efficiency_sweep_writes_one_row_per_point(model_dir, tmp_path):
    result = run_script("research/sweep.py", "recipes/dpo-data-efficiency/sweep.yaml", "--output_dir", str(tmp_path),
                        "--only", "mixed_20,mixed_100,kto_mixed_100", "--launcher", "python", "--seeds", "0",
                        "--set", f"model_name_or_path={model_dir}", "--set", "max_steps=2",
                        "--set", "num_train_epochs=1")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in open(tmp_path / "results.jsonl")]
    assert [(r["name"], r["seed"], r["fraction"], r["source"], r["method"]) for r in rows] == [
        ("mixed_20", 0, 0.2, "mixed", "dpo"), ("mixed_100", 0, 1.0, "mixed", "dpo"),
        ("kto_mixed_100", 0, 1.0, "mixed", "kto")]
    assert rows[0]["pairs"] == 30 and rows[1]["pairs"] == 150 and rows[2]["examples"] == 300
    assert all(r["reward_accuracy"] is not None for r in rows)  # KTO scored on the same held-out pairs
    report = (tmp_path / "report.md").read_text()
    assert (tmp_path / "sweep.png").stat().st_size > 0 and "best reward_accuracy" in report
    # one seed proves nothing: the claims are computed and say so; the claim on points not run says "not run"
    assert "more preference data helps" in report and "-> **inconclusive**" in report and ": not run" in report
    assert yaml.safe_load(open(tmp_path / "mixed_20-seed0.yaml"))["dataset_mixture"] == [
        {"path": "recipes/dpo-data-efficiency/data/dpo.jsonl", "weight": 0.2},
        {"path": "recipes/dpo-data-efficiency/data/dpo_hh.jsonl", "weight": 0.2}]
    assert yaml.safe_load(open(tmp_path / "kto_mixed_100-seed0.yaml"))["eval_dataset_name"].endswith("dpo_eval.jsonl")


@pytest.mark.parametrize("module, config", [(sft, "recipes/sft-ja-dolly-lora/sft.yaml"),
                                            (dpo, "recipes/dpo-hh-lora/dpo.yaml")], ids=["sft", "dpo"])
def test_real_scale_recipes_dry_run_offline(module, config, capsys):
    module.main(*parse(module.ARGUMENTS, ["--config", os.path.join(REPO, config), "--dry_run", "true"]))
    out = capsys.readouterr().out
    assert "| training | LoRA" in out and "| precision | bf16 |" in out


def test_a_merged_lora_with_trained_embeddings_keeps_a_tied_head_tied(tmp_path):
    """After a vocabulary expansion LoRA must train the new embedding rows (modules_to_save); with tied embeddings
    the merged model's head must follow the trained embedding, not keep the old one (PEFT / TRL issue threads)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from llm_recipes.training.common import save_merged

    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, tie_word_embeddings=True))
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"], modules_to_save=["embed_tokens"]))
    trained = peft_model.base_model.model.model.embed_tokens.modules_to_save["default"].weight
    with torch.no_grad():
        trained[60:] += 1.0  # the "new rows" LoRA trained

    class Tok:
        def save_pretrained(self, path):
            pass

    save_merged(peft_model, Tok(), str(tmp_path / "merged"))
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    emb, head = merged.get_input_embeddings().weight, merged.get_output_embeddings().weight
    assert head.data_ptr() == emb.data_ptr() and torch.allclose(emb, trained.detach())
