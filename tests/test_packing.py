"""Packing vs padding (recipes/packing-vs-padding): the three batch layouts, equal loss tokens per optimizer step,
no cross-sample attention in the padding-free layout, and the EOS probe report."""
import json
import os
import random

import pytest
import torch
from conftest import REPO

from llm_recipes.config import load_recipe
from llm_recipes.copy_world import probe_item
from llm_recipes.errors import RecipeError
from llm_recipes.research import probe_eos, verdict
from llm_recipes.scripts import sft
from llm_recipes.training.batch_layouts import LayoutCollator

DATA = os.path.join(REPO, "recipes", "tiny", "data")
RECIPE = os.path.join(REPO, "recipes", "packing-vs-padding")


def examples(lengths, loss_tokens=4, vocab=100, seed=0):
    """Prompt/completion-like examples: the last `loss_tokens` tokens are targets, the prompt is masked."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for n in lengths:
        ids = torch.randint(3, vocab, (n,), generator=g).tolist()
        rows.append({"input_ids": ids, "labels": [-100] * (n - loss_tokens) + ids[n - loss_tokens:]})
    return rows


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_padding_free_batch_loss_is_the_mean_of_per_sample_losses(attn):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, attn_implementation=attn))
    batch_examples = examples([9, 23, 14, 6])

    def loss(batch):  # the model's own loss: mean over target tokens (use_cache off, as the trainers run it)
        with torch.no_grad():
            return float(model(**batch, use_cache=False).loss)

    one_by_one = [loss(LayoutCollator("padding", 0)([e])) for e in batch_examples]
    mean = sum(one_by_one) / len(one_by_one)  # every example has 4 target tokens: sample mean = token mean
    assert loss(LayoutCollator("padding_free", 0)(batch_examples)) == pytest.approx(mean, abs=1e-5)
    assert loss(LayoutCollator("padding", 0)(batch_examples)) == pytest.approx(mean, abs=1e-5)
    # packing without a mask change lets later samples attend to earlier ones: the loss moves
    assert abs(loss(LayoutCollator("packed", 0)(batch_examples)) - mean) > 1e-4


def test_layouts_hold_the_same_loss_tokens_and_report_padding():
    batch_examples = examples([9, 23, 14, 6], loss_tokens=3)
    figures = {}
    for layout in ("padding", "padding_free", "packed"):
        collator = LayoutCollator(layout, 0)
        batch = collator(batch_examples)
        figures[layout] = collator.pending[0]
        assert ("attention_mask" in batch) == (layout == "padding")
        if layout == "packed":  # one row, positions 0..L-1: nothing tells the model where a sample starts
            assert batch["position_ids"].tolist() == [list(range(52))]
    assert {f["loss_tokens"] for f in figures.values()} == {12}
    assert figures["padding"]["tokens"] == 4 * 23 and figures["packed"]["tokens"] == 52
    assert figures["padding"]["real_tokens"] == figures["padding_free"]["real_tokens"] == 52


def head(name, n, tmp_path):
    """The first n records of a shipped data file (keeps the real runs below short)."""
    path = tmp_path / name
    if not path.exists():
        path.write_text("".join(open(os.path.join(DATA, name), encoding="utf-8").readlines()[:n]), encoding="utf-8")
    return str(path)


def run_arm(model_dir, tmp_path, layout, name=None, **overrides):
    args = load_recipe(sft.ARGUMENTS, os.path.join(RECIPE, "sft.yaml"), model_name_or_path=str(model_dir),
                       dataset_name=head("rc_train.jsonl", 96, tmp_path), output_dir=str(tmp_path / (name or layout)),
                       batch_layout=layout, max_steps=6, save_steps=3, per_device_train_batch_size=4,
                       gradient_accumulation_steps=2, logging_steps=1, **overrides)
    return sft.main(*args)


def test_arms_train_on_equal_loss_tokens_and_the_probe_reports_them(model_dir, tmp_path):
    reports = {layout: run_arm(model_dir, tmp_path, layout) for layout in ("padding", "packed", "padding_free")}
    tokens = [r["loss_tokens_per_step"] for r in reports.values()]
    assert len(tokens[0]) == 6 and min(tokens[0]) > 8 and tokens[0] == tokens[1] == tokens[2]
    assert reports["padding"]["real_token_fraction"] < 0.95
    assert reports["packed"]["real_token_fraction"] == reports["padding_free"]["real_token_fraction"] == 1.0

    def losses(layout):
        state = json.load(open(tmp_path / layout / "checkpoint-6" / "trainer_state.json"))
        return [e["loss"] for e in state["log_history"] if "loss" in e]

    # padding-free computes exactly what padding computes; packing without a mask change does not
    assert losses("padding_free") == pytest.approx(losses("padding"), abs=2e-3)
    assert losses("packed") != pytest.approx(losses("padding"), abs=2e-3)

    arms = {layout: [str(tmp_path / layout)] for layout in reports}
    out = tmp_path / "probe"
    report = probe_eos.main(probe_eos.ProbeArguments(
        output_dir=str(out), arms=arms, probe_dataset=head("eos_probe.jsonl", 8, tmp_path),
        eval_dataset=head("rc_eval.jsonl", 8, tmp_path), base_model=str(model_dir)))
    assert report["probe_items"] == 8 and report["loss_tokens_per_step"] == [sum(tokens[0]) / 6]
    assert report["seeds"] == 1 and report["verdict_unit"] == "8 items (one seed)"
    for layout, run in report["runs"].items():
        assert run["arm"] == layout and run["seed_index"] == 0
        assert [r["step"] for r in run["probe"]] == [0, 3, 6]
        assert all(r["logprob_eos"] < 0 and r["logprob_no_fact"] < 0 and 0 <= r["recall_eos"] <= 1
                   and 0 <= r["eval_recall"] <= 1 and r["eval_loss"] > 0 for r in run["probe"])
        assert run["real_tokens_per_s"] > 0
        last = run["probe"][-1]
        assert run["final"]["step"] == 6 and run["final"]["recall_gap"] == last["recall_no_eos"] - last["recall_eos"]
        assert run["final"]["logprob_gap"] == pytest.approx(last["logprob_no_eos"] - last["logprob_eos"])
        assert [r["step"] for r in report["verdicts"]["recall"][layout]["rows"]] == [0, 3, 6]
    assert "vs_reference" in report["verdicts"]["logprob"]["packed"]["rows"][0]
    assert (out / "probe.png").stat().st_size > 0 and (out / "training.png").stat().st_size > 0
    assert "real-token fraction" in (out / "report.md").read_text() and "Verdict:" in (out / "report.md").read_text()

    # probe items with the previous sample's passage add the bare-passage conditions, verdicts and figures
    rng = random.Random(0)
    passages = tmp_path / "probe_passages.jsonl"
    passages.write_text("".join(json.dumps(probe_item(rng), ensure_ascii=False) + "\n" for _ in range(4)),
                        encoding="utf-8")
    with_passage = probe_eos.main(probe_eos.ProbeArguments(output_dir=str(tmp_path / "probe_p"), arms=arms,
                                                           probe_dataset=str(passages)))
    assert set(with_passage["verdicts"]) == {"recall", "logprob", "recall_passage", "logprob_passage"}
    final = with_passage["runs"]["packed"]["final"]
    assert final["recall_passage_gap"] == final["recall_passage_no_eos"] - final["recall_passage_eos"]
    assert "after a bare passage" in with_passage["headline"] and "recall_passage" not in report["verdicts"]

    # the verdict stage reads each run's last-checkpoint figures from the probe report
    claims = [{"metric": "gap", "better": "packed", "worse": "padding"}]
    result = verdict.main(verdict.VerdictArguments(
        arms=arms, output_dir=str(tmp_path / "verdict"), claims=claims,
        metrics=[{"name": "gap", "key": "runs.{name}.final.logprob_gap", "report": str(out)}]))
    assert result["values"]["gap"]["packed"] == [report["runs"]["packed"]["final"]["logprob_gap"]]

    # a run on other batches (another seed) is refused: its loss tokens differ at some step
    run_arm(model_dir, tmp_path, "padding", name="other", seed=7)
    with pytest.raises(RecipeError, match="other and packed differ in loss tokens at optimizer step"):
        probe_eos.main(probe_eos.ProbeArguments(output_dir=str(tmp_path / "p2"),
                                                arms={"packed": arms["packed"], "padding": [str(tmp_path / "other")]},
                                                probe_dataset=head("eos_probe.jsonl", 8, tmp_path)))
    with pytest.raises(RecipeError, match="same number of seeds in every arm"):
        probe_eos.main(probe_eos.ProbeArguments(output_dir=str(tmp_path / "p3"),
                                                arms={"packed": arms["packed"], "padding": [*arms["padding"]] * 2},
                                                probe_dataset=head("eos_probe.jsonl", 8, tmp_path)))


def test_batch_layout_refuses_trl_packing_keys(model_dir, tmp_path):
    with pytest.raises(RecipeError, match="batch_layout: set packing and padding_free to false"):
        run_arm(model_dir, tmp_path, "packed", padding_free=True)
