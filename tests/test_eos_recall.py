"""recipes/packing-vs-padding with a base that reads its context: the copy data is reproducible and answerable only
from the context, the precondition stops a run whose base model does not copy, and the probe's prompts put the fact in
the previous sample with and without [EOS]."""
import dataclasses
import json
import os

import pytest
from conftest import REPO, run_script

from llm_recipes.config import load_recipe
from llm_recipes.errors import RecipeError
from llm_recipes.evaluation.eos_probe import boundary_verdicts, probe_prompts, score_probe
from llm_recipes.research import context_recall
from llm_recipes.runner import script_module
from llm_recipes.scripts import pretrain

RECIPE = os.path.join(REPO, "recipes", "packing-vs-padding")
make_data = script_module(os.path.join(RECIPE, "make_data.py"))  # the recipe's own data stage
TINY_DOCS = os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl")


def small_args(output_dir, seed=0):
    return make_data.CopyDataArguments(output_dir=str(output_dir), tiny_docs=TINY_DOCS, tiny_docs_repeats=1,
                                            copy_documents=300, recall_eval_examples=40, sft_examples=60,
                                            probe_items=30, seed=seed)


def test_copy_data_is_byte_identical_for_a_seed_and_answerable_only_from_context(tmp_path):
    make_data.main(small_args(tmp_path / "a"))
    make_data.main(small_args(tmp_path / "b"))
    make_data.main(small_args(tmp_path / "c", seed=1))
    names = ["pretrain.jsonl", "recall_eval.jsonl", "sft.jsonl", "probe.jsonl"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name
    # the recipe's data stage config parses and names the same generator options
    args = load_recipe(make_data.ARGUMENTS, os.path.join(RECIPE, "data.yaml"))[0]
    assert args.copy_documents >= 10000 and args.tiny_docs.endswith("docs.jsonl")

    def rows(name):
        return [json.loads(line) for line in (tmp_path / "a" / name).read_text(encoding="utf-8").splitlines()]

    pretrain = rows("pretrain.jsonl")
    assert len(pretrain) == 300 + sum(1 for _ in open(TINY_DOCS, encoding="utf-8"))
    assert sum("の名前" in d["text"] for d in pretrain) == 300  # the copy documents (roll calls included)
    answers = set()
    for r in rows("sft.jsonl") + rows("recall_eval.jsonl"):
        passage, question = r["prompt"].split("\n質問：")
        assert r["completion"] == f"{r['answer']}です。" and r["answer"] in passage  # stated in the passage,
        assert r["answer"] not in question  # not in the question
        answers.add(r["answer"])
    assert len(answers) >= 80  # 100 draws from 784 names: few repeats, and no name goes with one person or pet
    for r in rows("probe.jsonl"):  # the previous sample states the fact and is answered; the next one asks again
        assert r["answer"] in r["context"].split("\n質問：")[0] and r["answer"] not in r["question"]
        assert r["context"].endswith(r["answer"] + "です。") and r["question"] in r["context"]
        assert r["context"].startswith(r["passage"] + "\n質問：") and r["answer"] in r["passage"]
    # one fact per text (the recipe's max_facts): exactly one pet name in each passage
    names = [m for r in rows("sft.jsonl") for m in [r["answer"]] if r["prompt"].count("の名前") +
             r["prompt"].count("という名前") == 2]
    assert len(names) == 60
    # an unanswerable share: passages without a pet, answered わかりません。; the other files stay as they were
    mixed = make_data.build(dataclasses.replace(small_args(tmp_path), unanswerable_share=0.5))
    unanswerable = [r for r in mixed["sft.jsonl"] if r["completion"] == "わかりません。"]
    assert 15 <= len(unanswerable) <= 45 and all(r["answer"] is None and "名前は" not in r["prompt"].split("\n")[0]
                                                 for r in unanswerable)
    assert mixed["probe.jsonl"] == rows("probe.jsonl") and mixed["recall_eval.jsonl"] == rows("recall_eval.jsonl")
    with pytest.raises(RecipeError, match="max_facts: 0 must be between 1 and 6"):
        make_data.main(make_data.CopyDataArguments(output_dir=str(tmp_path / "d"), max_facts=0))
    assert not (tmp_path / "d").exists()


def test_probe_prompts_put_the_fact_in_the_previous_sample_with_and_without_eos(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    record = {"context": "コワさんの猫の名前はサククです。\n質問：ソトさんの馬の名前は何ですか？\n答え：カノミです。",
              "question": "質問：コワさんの猫の名前は何ですか？\n答え：", "answer": "サクク"}
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    eos = tokenizer.eos_token
    prompts = probe_prompts(record, eos)
    assert prompts == {"eos": record["context"] + eos + record["question"],
                       "no_eos": record["context"] + "\n" + record["question"], "no_fact": record["question"]}
    ids = {k: tokenizer(v, add_special_tokens=False).input_ids for k, v in prompts.items()}
    context = tokenizer(record["context"], add_special_tokens=False).input_ids
    # [EOS] is one token exactly at the boundary, as in a packed row (no BOS: the tokenizer adds none)
    assert ids["eos"][:len(context)] == context and ids["eos"][len(context)] == tokenizer.eos_token_id
    assert ids["eos"].count(tokenizer.eos_token_id) == 1 and tokenizer.eos_token_id not in ids["no_eos"]
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    scores = score_probe(model, tokenizer, [record, record])
    assert set(scores) == {"eos", "no_eos", "no_fact"}
    for c in scores.values():
        assert c["recall"] == [0, 0] and all(lp < 0 for lp in c["logprob"])  # random weights: no recall
    assert scores["eos"]["logprob"][0] != scores["no_eos"]["logprob"][0]
    # with the previous sample's passage alone: passage + [EOS] + question and passage + newline + question too
    bare = {**record, "passage": "コワさんの猫の名前はサククです。"}
    prompts = probe_prompts(bare, eos)
    assert prompts["passage_eos"] == bare["passage"] + eos + record["question"]
    assert prompts["passage_no_eos"] == bare["passage"] + "\n" + record["question"]
    ids = tokenizer(prompts["passage_eos"], add_special_tokens=False).input_ids
    assert ids.count(tokenizer.eos_token_id) == 1
    assert set(score_probe(model, tokenizer, [bare])) == {"eos", "no_eos", "no_fact", "passage_eos", "passage_no_eos"}


def recall_records(tmp_path, n=12):
    path = tmp_path / "recall.jsonl"
    make_data.write({"recall.jsonl": make_data.build(small_args(tmp_path))["recall_eval.jsonl"][:n]},
                         tmp_path)
    return str(path)


def test_precondition_stops_a_base_model_that_does_not_copy(model_dir, tmp_path):
    data = recall_records(tmp_path)
    args = load_recipe(context_recall.ARGUMENTS, os.path.join(RECIPE, "precondition.yaml"),
                       model_name_or_path=str(model_dir), dataset_name=data, output_dir=str(tmp_path / "gate"))[0]
    assert args.min_recall == 0.8
    with pytest.raises(RecipeError, match=r"precondition failed: held-out in-context recall 0\.000 \(0/12\)"):
        context_recall.main(args)
    assert not (tmp_path / "gate" / "report.json").exists()
    args.min_recall = 0.0  # the same model passes a zero bar: the stage reports and completes
    report = context_recall.main(args)
    assert report["recall"] == 0.0 and report["records"] == 12 and report["mean_logprob"] < 0
    # as a recipe: the stage prints the recall, exits 2 with one line naming the threshold, and SFT never starts
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "gate.yaml").write_text(f"model_name_or_path: {model_dir}\ndataset_name: {data}\n"
                                      "output_dir: \"{run_dir}/precondition\"\nmin_recall: 0.8\n")
    (recipe / "recipe.yaml").write_text(
        f"run_dir: {tmp_path / 'run'}\nstages:\n  - {{name: precondition, script: research/context_recall.py, "
        f"config: gate.yaml}}\n  - {{name: sft_packed, script: scripts/sft.py, config: {RECIPE}/sft.yaml}}\n")
    result = run_script("scripts/run_recipe.py", str(recipe), "--launcher", "python")
    assert result.returncode != 0
    assert "held-out in-context recall: 0.000 (0/12" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: precondition failed")]
    assert len(errors) == 1 and "below min_recall 0.8" in errors[0]
    assert not (tmp_path / "run" / "sft_packed").exists()


def test_boundary_verdicts_find_the_onset_step():
    def step(no_eos, eos):
        return {"no_eos": {"recall": no_eos}, "eos": {"recall": eos}}

    n = 20
    same = step([1] * n, [1] * n)
    drop = step([1] * n, [1] * 5 + [0] * (n - 5))
    packed = [(0, same), (50, drop), (100, same), (150, drop), (200, drop)]
    padding = [(s, same) for s, _ in packed]
    out = boundary_verdicts(packed, padding)
    assert [r["gap"]["verdict"] for r in out["rows"]] == ["inconclusive", "reproduced", "inconclusive", "reproduced",
                                                          "reproduced"]
    assert out["onset"] == {"gap": 150, "vs_reference": 150}
    assert boundary_verdicts(padding)["onset"] == {"gap": None, "vs_reference": None}
    assert boundary_verdicts([(0, drop)], [(0, same)])["onset"]["gap"] == 0  # step 0 counts


def test_recall_target_stops_training_once_recall_is_reached(model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerControl, TrainerState

    from llm_recipes.training.recall_target import RecallTarget, in_context_recall

    model = AutoModelForCausalLM.from_pretrained(model_dir).train()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    records = [json.loads(line) for line in open(recall_records(tmp_path, n=6), encoding="utf-8")]
    assert in_context_recall(model.eval(), tokenizer, records)[0] == 0  # random weights copy nothing
    model.train()

    def step(target, n):
        state, control = TrainerState(), TrainerControl()
        state.global_step = n
        return target.on_step_end(None, state, control, model=model)

    never = RecallTarget(tokenizer, records, min_recall=0.5, every_steps=10)
    assert not step(never, 5).should_training_stop and never.history == []  # not a checking step
    control = step(never, 10)
    assert not control.should_training_stop and never.history == [(10, 0.0)] and never.reached is None
    assert model.training  # the check leaves the model training
    # pretrain.py's stop_at_recall builds the callback from a dataset file and refuses a bad spec
    target = pretrain.recall_target({"dataset_name": recall_records(tmp_path, n=6), "min_recall": 1e-9,
                                     "every_steps": 20}, tokenizer)
    assert len(target.records) == 6 and target.every_steps == 20
    with pytest.raises(RecipeError, match="stop_at_recall: expected"):
        pretrain.recall_target({"dataset_name": "x.jsonl", "min_recall": 0}, tokenizer)
    with pytest.raises(RecipeError, match="every_steps >= 1"):
        pretrain.recall_target({"dataset_name": "x.jsonl", "min_recall": 0.9, "every_steps": 0}, tokenizer)
    # recall >= the target stops at that step and asks for a checkpoint there
    reached = RecallTarget(tokenizer, records, min_recall=0.0, every_steps=10)
    control = step(reached, 30)
    assert control.should_training_stop and control.should_save and reached.reached == 30
