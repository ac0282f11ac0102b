"""The seed systems of issue 17: quality classifier filter, SemDeDup, Rho-1 token selection, Self-Instruct. Each test
checks the method's defining behaviour on a real (small) run."""
import json
import math
import os

import pytest
import torch
from conftest import REPO

from llm_recipes.config import RecipeError, load_recipe

DOCS = os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl")
WIKI = os.path.join(REPO, "data", "jglue-v1.3", "ja_wikipedia_paragraphs.jsonl")


# --- Rho-1 ---------------------------------------------------------------------------------------------------------

def test_rho1_loss_uses_exactly_the_top_share_of_tokens_by_excess_loss():
    """Hand computation on a 2 x 6 batch with ignored labels: per-token cross-entropy of model and reference with
    plain Python, the ceil(ratio * n) tokens with the largest L_theta - L_ref, their mean; the Trainer's training loss
    agrees, and its evaluation loss is the plain mean over every scored token."""
    from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments

    from llm_recipes.scripts.pretrain import SelectiveTrainer
    from llm_recipes.training.token_selection import selective_loss

    config = LlamaConfig(vocab_size=17, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2)
    torch.manual_seed(0)
    model, reference = LlamaForCausalLM(config), LlamaForCausalLM(config)
    input_ids = torch.randint(0, 17, (2, 6))
    labels = input_ids.clone()
    labels[0, 4:] = -100  # padding-like positions are never scored
    labels[1, 2] = -100
    ratio = 0.4
    logits, ref_logits = model(input_ids).logits, reference(input_ids).logits

    def ce(lg, row, t):  # -log softmax(logits[row, t])[label[row, t + 1]]
        values = lg[row, t].tolist()
        top = max(values)
        log_z = top + math.log(sum(math.exp(v - top) for v in values))
        return log_z - values[int(labels[row, t + 1])]

    scored = [(row, t) for row in range(2) for t in range(5) if labels[row, t + 1] != -100]
    excess = {(row, t): ce(logits, row, t) - ce(ref_logits, row, t) for row, t in scored}
    k = math.ceil(ratio * len(scored))
    chosen = sorted(scored, key=lambda p: excess[p], reverse=True)[:k]
    by_hand = sum(ce(logits, row, t) for row, t in chosen) / k

    loss, selected, mask, _ = selective_loss(logits, ref_logits, labels, ratio)
    assert int(mask.sum()) == len(scored) == 7 and int(selected.sum()) == k == 3
    assert {(int(r), int(t)) for r, t in selected.nonzero()} == set(chosen)
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)

    trainer = SelectiveTrainer(model=model, args=TrainingArguments(output_dir="unused", use_cpu=True, report_to=[]),
                               reference_model=reference, ratio=ratio)
    model.train()
    trained_loss = trainer.compute_loss(model, {"input_ids": input_ids, "labels": labels})
    assert trained_loss.item() == pytest.approx(by_hand, rel=1e-5)
    assert trainer.step_counts == {"selected": 3, "scored": 7, "loss_sum": pytest.approx(
        sum(ce(logits, r, t) for r, t in scored), rel=1e-5)}
    model.eval()  # evaluation: the plain loss over every scored token
    assert trainer.compute_loss(model, {"input_ids": input_ids, "labels": labels}).item() == pytest.approx(
        sum(ce(logits, r, t) for r, t in scored) / len(scored), rel=1e-5)


def test_rho1_pretraining_logs_the_selected_share_per_step(model_dir, tmp_path):
    from llm_recipes.scripts import pretrain

    keys = dict(dataset_name=DOCS, tokenizer_name_or_path=str(model_dir), output_dir=str(tmp_path / "slm"),
                hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, block_size=64,
                max_steps=4, per_device_train_batch_size=4, logging_steps=2, save_steps=100, report_to=[],
                eval_strategy="no", token_selection={"reference_model": str(model_dir), "ratio": 0.3})
    report = pretrain.main(*load_recipe("pretrain", keys))
    steps = [json.loads(line) for line in open(tmp_path / "slm" / "token_selection.jsonl", encoding="utf-8")]
    assert [s["step"] for s in steps] == [1, 2, 3, 4]
    assert all(s["scored"] == 4 * 63 and s["selected"] == math.ceil(0.3 * 4 * 63) for s in steps)
    assert report["selected_token_fraction"] == pytest.approx(math.ceil(0.3 * 252) / 252)
    with pytest.raises(RecipeError, match="token_selection.ratio"):
        pretrain.main(*load_recipe("pretrain", {**keys, "token_selection": {"reference_model": "x", "ratio": 1.5}}))


# --- quality classifier ---------------------------------------------------------------------------------------------

def test_quality_classifier_filter_removes_what_the_classifier_scores_below_the_threshold(tmp_path):
    """Train on Wikipedia paragraphs vs generated web noise, filter the held-out mix in the corpus stage: every document
    in removed/quality_classifier/ scores below the threshold with the saved model, every kept one at or above it, and
    the corpus report accounts for it (read = kept + sum of removed)."""
    import glob

    import fasttext

    from llm_recipes.corpus.blocks import char_tokens
    from llm_recipes.scripts import corpus, quality_classifier

    out = tmp_path / "qc"
    report = quality_classifier.main(*load_recipe("quality_classifier", dict(
        output_dir=str(out), positive=[{"path": WIKI, "limit": 300}], generated_negatives=150, held_out_fraction=0.3,
        bucket=20000)))
    assert report["counts"] == {"hq": {"train": 210, "held_out": 90}, "lq": {"train": 105, "held_out": 45}}
    assert report["recall"] > 0.8 and report["precision"] > 0.8
    threshold = 0.9  # strict: some Wikipedia paragraphs fall below it too
    result = corpus.main(*load_recipe("corpus", dict(
        input_path=str(out / "held_out.jsonl"), output_dir=str(tmp_path / "corpus"), languages=["ja"],
        language_threshold=0.0, gopher_repetition={"ja": None}, gopher_quality={"ja": None},
        fineweb_quality={"ja": None}, japanese_quality=False,
        quality_classifier={"model": str(out / "model.bin"), "threshold": threshold})))
    model = fasttext.load_model(str(out / "model.bin"))

    def texts(folder):
        return [json.loads(line)["text"] for f in glob.glob(str(tmp_path / "corpus" / folder / "*.jsonl"))
                for line in open(f, encoding="utf-8")]

    def p_hq(text):
        labels, probs = model.predict(char_tokens(text), k=-1)  # how the classifier was trained (model.bin.json)
        return dict(zip(labels, probs))["__label__hq"]

    removed, kept = texts("removed/quality_classifier"), texts("kept")
    assert len(removed) == result["removed"]["quality_classifier"] >= 40 and len(kept) == result["kept"] >= 40
    assert all(p_hq(t) < threshold for t in removed) and all(p_hq(t) >= threshold for t in kept)
    assert result["read"] == 135 == result["kept"] + sum(result["removed"].values())
