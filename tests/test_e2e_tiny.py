"""End to end: recipes/tiny, shortened, through run_recipe.py (every stage an `accelerate launch` process), then the
artifacts are checked in fresh processes and the corpus output against the planted truth."""
import glob
import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, run_script

TRUTH = json.load(open(os.path.join(REPO, "recipes", "tiny", "data", "truth.json"), encoding="utf-8"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tiny")
    result = run_script("scripts/run_recipe.py", "recipes/tiny", "--run_dir", str(run_dir),
                        "--set", "pretrain.max_steps=80", "--set", "pretrain.save_steps=40",
                        "--set", "sft.logging_steps=5",  # SFT keeps its 40 steps: fewer do not learn to stop
                        "--set", "dpo.max_steps=4", "--set", "dpo.save_steps=4", "--set", "dpo.logging_steps=2",
                        timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run_dir, result.stdout


def report(run_dir, stage):
    return json.load(open(run_dir / stage / "report.json", encoding="utf-8"))


def test_summary_table_printed(run):
    run_dir, stdout = run
    assert "## Summary of recipes/tiny" in stdout
    for stage in ("corpus", "tokenizer", "pretrain", "sft", "dpo", "evaluate"):
        assert f"| {stage} |" in stdout
    assert (run_dir / "summary.md").exists() and (run_dir / "configs" / "pretrain.yaml").exists()


def test_corpus_accounting_and_planted_truth(run):
    run_dir, _ = run
    r = report(run_dir, "corpus")
    assert r["read"] == r["kept"] + sum(r["removed"].values())
    kept = {json.loads(line)["id"]: json.loads(line)["text"]
            for f in glob.glob(str(run_dir / "corpus" / "kept" / "*.jsonl")) for line in open(f, encoding="utf-8")}
    assert not set(TRUTH["spam"]) & set(kept) and not set(TRUTH["wrong_language"]) & set(kept)
    for copy, original in TRUTH["exact_duplicate"].items():  # exactly one of each exact-duplicate pair survives
        assert (copy in kept) + (original in kept) == 1
    near = sum((copy in kept) + (original in kept) == 1 for copy, original in TRUTH["near_duplicate"].items())
    assert near >= 0.8 * len(TRUTH["near_duplicate"])
    in_groups = set(TRUTH["exact_duplicate"]) | set(TRUTH["exact_duplicate"].values()) | \
        set(TRUTH["near_duplicate"]) | set(TRUTH["near_duplicate"].values())
    assert all(d in kept for d in TRUTH["clean"] if d not in in_groups)
    for doc_id, pii in TRUTH["pii"].items():
        if doc_id in kept:
            assert all(p not in kept[doc_id] for p in pii)
    for rule, n in r["removed"].items():
        if n:
            assert sum(1 for f in glob.glob(str(run_dir / "corpus" / "removed" / rule / "*.jsonl"))
                       for _ in open(f)) == n


def test_training_losses_fall_and_dpo_reports_rewards(run):
    run_dir, _ = run
    p, s, d = report(run_dir, "pretrain"), report(run_dir, "sft"), report(run_dir, "dpo")
    assert p["loss_last"] < 0.6 * p["loss_first"]
    assert s["loss_last"] < s["loss_first"]
    assert s["stops_at_eos"] == 1.0
    assert d["reward_accuracy"] is not None and d["steps"] == 4


def test_evaluation_covers_every_question_of_each_model(run):
    run_dir, _ = run
    scores = report(run_dir, "evaluate")["scores"]
    assert set(scores) == {"pretrain", "sft", "dpo"}
    for s in scores.values():
        task = s["jcommonsenseqa_local"]
        assert task["n"] == 45 and task["chance"] == pytest.approx(0.2) and 0 <= task["score"] <= 1
        assert task["metric"] == "acc" and 0 <= task["batch_calibrated_acc"] <= 1
    assert (run_dir / "evaluate" / "leaderboard.md").exists()


def test_artifacts_load_in_a_fresh_process_and_chat_model_stops_at_eos(run):
    run_dir, _ = run
    code = f"""
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
AutoTokenizer.from_pretrained({str(run_dir / 'tokenizer')!r})
for stage in ("pretrain", "sft", "dpo"):
    AutoModelForCausalLM.from_pretrained({str(run_dir)!r} + "/" + stage)
path = {str(run_dir / 'sft')!r}
tok, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
ids = tok.apply_chat_template([{{"role": "user", "content": "トコワ村の名産は何ですか?"}}], add_generation_prompt=True,
                              return_tensors="pt", return_dict=True)
out = model.generate(**ids, max_new_tokens=20, do_sample=False)[0, ids["input_ids"].shape[1]:].tolist()
assert tok.eos_token == "<|im_end|>" and out[-1] == tok.eos_token_id, (tok.decode(out), out)
print("OK", tok.decode(out, skip_special_tokens=True))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


def test_every_model_has_a_model_card_and_tensorboard_events(run):
    """Each saved model explains itself (recipe, base model, metrics, options); training curves are in TensorBoard
    event files that tensorboard's own reader reads back."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = run
    for stage, metric in (("pretrain", "eval_loss"), ("sft", "train_loss"), ("dpo", "reward_accuracy")):
        card = (run_dir / stage / "README.md").read_text(encoding="utf-8")
        assert "recipes/tiny (stage " + stage + ")" in card and f"| {metric} |" in card, card[:800]
        assert "license: apache-2.0" in card and "hub_token" not in card and "learning_rate:" in card
        events = glob.glob(str(run_dir / stage / "runs" / "*" / "events.out.tfevents.*"))
        assert events, f"{stage}: no TensorBoard event file"
        accumulator = EventAccumulator(os.path.dirname(events[0]))
        accumulator.Reload()
        loss = accumulator.Scalars("train/loss")
        assert len(loss) >= 2 and all(e.value == e.value for e in loss)
    assert "sft" in (run_dir / "dpo" / "README.md").read_text(encoding="utf-8")  # the base model it started from
