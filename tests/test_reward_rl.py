"""Reward model, RL against it, and RSO: the defining behaviour of each, on real (tiny) runs."""
import json
import math
import os
import random
import subprocess
import sys

import pytest
from conftest import REPO

DPO = os.path.join(REPO, "recipes", "tiny", "data", "dpo.jsonl")
DPO_EVAL = os.path.join(REPO, "recipes", "tiny", "data", "dpo_eval.jsonl")
SFT_EVAL = os.path.join(REPO, "recipes", "tiny", "data", "sft_eval.jsonl")
FAST = {"save_strategy": "no", "report_to": "none", "logging_steps": 1, "use_cpu": True, "bf16": False,
        "activation_checkpointing": False}


@pytest.fixture(scope="module")
def reward_dir(model_dir, tmp_path_factory):
    """A short real run of scripts/reward.py (3 steps) from the tiny random model."""
    from llm_recipes.config import load_recipe
    from llm_recipes.scripts import reward

    out = str(tmp_path_factory.mktemp("reward") / "reward")
    reward.main(*load_recipe("reward", {
        "model_name_or_path": str(model_dir), "dataset_name": DPO, "eval_dataset_name": DPO_EVAL, "output_dir": out,
        "max_steps": 3, "per_device_train_batch_size": 4, "per_device_eval_batch_size": 64, "eval_on_start": True,
        "max_length": 128, **FAST}))
    return out


def test_reward_loss_is_bradley_terry_on_a_hand_checked_batch(model_dir, tmp_path):
    """The trainer's loss on a batch of two pairs equals mean(-log sigmoid(r_w - r_l)) with r computed by the model
    on each conversation alone (no padding), and the hand formula log(1 + exp(-(r_w - r_l)))."""
    import datasets
    import torch
    from trl import ModelConfig, RewardConfig, RewardTrainer

    from llm_recipes.training.rewards import load_reward_model

    torch.manual_seed(0)
    model, tokenizer = load_reward_model(ModelConfig(model_name_or_path=str(model_dir)))
    pairs = [{"prompt": [{"role": "user", "content": "ロエイ村の名産は何ですか?"}],
              "chosen": [{"role": "assistant", "content": "イチゴです。"}],
              "rejected": [{"role": "assistant", "content": "ナシです。ナシです。"}]},
             {"prompt": [{"role": "user", "content": "ロエイ村の旗の色は何色ですか?"}],
              "chosen": [{"role": "assistant", "content": "黄色です。"}],
              "rejected": [{"role": "assistant", "content": "赤です。"}]}]
    trainer = RewardTrainer(model=model, args=RewardConfig(output_dir=str(tmp_path), **FAST),
                            train_dataset=datasets.Dataset.from_list(pairs), processing_class=tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch)).item()

        def r(messages):
            ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
            return model(input_ids=torch.tensor([ids])).logits[0, 0].item()

        margins = [r(p["prompt"] + p["chosen"]) - r(p["prompt"] + p["rejected"]) for p in pairs]
    assert all(abs(m) > 1e-4 for m in margins)  # the random head tells the replies apart
    expected = sum(math.log1p(math.exp(-m)) for m in margins) / 2
    assert loss == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert loss == pytest.approx(-torch.nn.functional.logsigmoid(torch.tensor(margins)).mean().item(), rel=1e-4)


def test_reward_run_saves_a_model_that_loads_in_a_fresh_process(reward_dir):
    report = json.load(open(os.path.join(reward_dir, "report.json"), encoding="utf-8"))
    assert report["steps"] == 3 and report["eval_pairs"] == 45
    assert 0 <= report["heldout_accuracy"] <= 1 and report["heldout_accuracy_before"] is not None
    assert any(f.endswith(".safetensors") for f in os.listdir(reward_dir))
    code = ("import sys, torch; from transformers import AutoModelForSequenceClassification as M, AutoTokenizer as T;"
            "m = M.from_pretrained(sys.argv[1]).eval(); t = T.from_pretrained(sys.argv[1]);"
            "x = t.apply_chat_template([{'role': 'user', 'content': 'q'}, {'role': 'assistant', 'content': 'a'}],"
            " tokenize=True, return_dict=True, return_tensors='pt');"
            "print(type(m).__name__, m.config.num_labels, m(**x).logits.shape)")
    out = subprocess.run([sys.executable, "-c", code, reward_dir], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["LlamaForSequenceClassification", "1", "torch.Size([1,", "1])"]


def test_rl_kl_to_the_sft_model_is_zero_at_step_0_and_logged(model_dir, reward_dir, tmp_path):
    from llm_recipes.config import load_recipe
    from llm_recipes.scripts import rl

    out = str(tmp_path / "rl")
    report = rl.main(*load_recipe("rl", {
        "model_name_or_path": str(model_dir), "reward_model_name_or_path": reward_dir, "dataset_name": DPO,
        "eval_dataset_name": SFT_EVAL, "output_dir": out, "max_steps": 2, "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16, "num_generations": 4, "max_completion_length": 8, "beta": 0.1,
        "learning_rate": 1e-2, "logging_first_step": True, "disable_dropout": True, **FAST}))
    # the first training log (logging_first_step: the generation before any update) holds the KL, exactly 0: the
    # policy is the SFT model; so is the held-out KL evaluated on start. After two updates the policy has moved.
    assert report["kl_step0"] == 0.0 and report["heldout_kl_before"] == 0.0
    assert report["steps"] == 2 and report["heldout_kl_after"] != 0.0 and report["kl_last"] is not None
    assert json.load(open(os.path.join(out, "report.json"), encoding="utf-8"))["kl_step0"] == 0.0
    assert os.path.isfile(os.path.join(out, "rl_curves.png"))


def test_rso_sampler_accepts_with_the_stated_probability():
    """Algorithm 1 on two candidates visited in order (low, high), one sample wanted: the low one is accepted on its
    visit with probability exp((r_low - r_max) / beta), else the high one (probability 1 on its visit)."""
    from scipy.stats import binomtest

    from llm_recipes.training.rewards import rejection_sample

    rng, n = random.Random(0), 20000
    for beta, rewards in ((0.5, [0.0, 0.4]), (1.0, [-1.0, 0.5])):
        p = math.exp((rewards[0] - rewards[1]) / beta)
        low = sum(rejection_sample(rewards, 1, beta, rng) == [0] for _ in range(n))
        assert binomtest(low, n, p).pvalue > 1e-3, (beta, low / n, p)
    # three candidates, all wanted: everything is accepted eventually, the best one in the first pass
    assert sorted(rejection_sample([0.0, -5.0, 1.0], 3, 0.1, rng)) == [0, 1, 2]
    # a pass's acceptances are independent: with rewards (r_max, r_max - beta*ln 2, ...) the second is accepted first
    # with probability exp(-ln 2) = 1/2 when it is visited first
    first = sum(rejection_sample([-0.5 * math.log(2), 0.0], 2, 0.5, rng)[0] == 0 for _ in range(n))
    assert binomtest(first, n, 0.5).pvalue > 1e-3


def test_rso_pairs_put_the_higher_reward_first():
    from llm_recipes.training.rewards import pair_up

    assert pair_up([3, 0, 1, 2, 4], [0.1, 0.5, 0.2, 0.9, 0.0]) == [(3, 0), (1, 2)]
    assert pair_up([0, 1], [0.3, 0.3]) == []  # a tie is no preference


@pytest.mark.parametrize("stage, config, names", [
    ("reward", "recipes/instructgpt-hh/reward.yaml", ["Qwen/Qwen2.5-0.5B-Instruct", "Anthropic/hh-rlhf", "LoRA"]),
    ("rl", "recipes/instructgpt-hh/rl.yaml", ["Qwen/Qwen2.5-0.5B-Instruct", "Anthropic/hh-rlhf", "| 500 |"]),
    ("rso", "recipes/rso-hh/rso.yaml", ["64 per prompt", "8 accepted per prompt, beta=0.5", "Anthropic/hh-rlhf"]),
    ("dpo", "recipes/rso-hh/dpo.yaml", ["Qwen/Qwen2.5-0.5B-Instruct", "pairs.jsonl", "| precision | bf16 |"]),
], ids=lambda v: v if isinstance(v, str) and v.startswith("recipes/") else None)
def test_real_scale_variants_dry_run_offline(stage, config, names, tmp_path, capsys):
    import importlib

    from llm_recipes.config import load_recipe

    module = importlib.import_module(f"llm_recipes.scripts.{stage}")
    assert module.main(*load_recipe(stage, os.path.join(REPO, config), dry_run=True,
                                    output_dir=str(tmp_path / "out"))) is None
    out = capsys.readouterr().out
    assert all(name in out for name in names), out
    assert not (tmp_path / "out").exists()  # nothing loaded, nothing written


def test_rso_stage_writes_pairs_dpo_reads(model_dir, reward_dir, tmp_path):
    """scripts/rso.py end to end: every pair's chosen reply scored higher; the file is preference data for dpo.py;
    rejection sampling tilts the accepted replies towards higher reward than the candidates on average."""
    from llm_recipes.config import load_recipe
    from llm_recipes.data import load_records
    from llm_recipes.scripts import rso
    from llm_recipes.training.data_formats import for_preference

    report = rso.main(*load_recipe("rso", {
        "model_name_or_path": str(model_dir), "reward_model_name_or_path": reward_dir, "dataset_name": DPO,
        "output_dir": str(tmp_path / "rso"), "num_candidates": 4, "num_samples": 2, "beta": 0.01,
        "max_new_tokens": 4, "batch_size": 64}))
    pairs = [json.loads(line) for line in open(tmp_path / "rso" / "pairs.jsonl", encoding="utf-8")]
    assert report["prompts"] == 75 and report["candidates"] == 300 and len(pairs) == report["pairs"] > 0
    assert all(p["chosen_reward"] > p["rejected_reward"] for p in pairs)
    assert report["mean_reward_accepted"] > report["mean_reward_candidates"]
    dataset, bad = for_preference(load_records(str(tmp_path / "rso" / "pairs.jsonl")), "pairs.jsonl", "drop")
    assert len(dataset) + bad == len(pairs)
