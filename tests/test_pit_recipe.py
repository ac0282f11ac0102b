"""recipes/pit builds the paper's six arms as specified: each arm's data stages in the paper's order, open-book records
that put each train document right before its own QA, the same test-document budget in every arm, >= 3 seeds per arm,
the evaluation and verdict stages covering every run, and the paper's figures shown beside ours."""
import json
import os
import re
from collections import Counter

import pytest
import yaml
from conftest import REPO

from llm_recipes.config import fill_placeholders, recipe_context, with_seeds
from llm_recipes.research import verdict
from llm_recipes.runner import script_module

prepare = script_module(os.path.join(REPO, "recipes", "tiny", "data", "prepare.py"))  # the tiny world's generator

PIT = os.path.join(REPO, "recipes", "pit")
DATA = os.path.join(REPO, "recipes", "tiny", "data")
ARMS = {  # arm -> (stage file, data files of each data stage in order; a set = one mixed stage)
    "cpt": ("cpt.yaml", ["test_docs"]),
    "cpt_then_it": ("cpt_then_it.yaml", ["test_docs", "train_qa"]),
    "mixed": ("mixed.yaml", [{"train_docs", "train_qa", "test_docs"}]),
    "pit": ("pit.yaml", ["train_open_book", "test_docs"]),
    "pit_qa_only": ("pit_qa_only.yaml", ["train_qa", "test_docs"]),
    "qa_then_docs": ("qa_then_docs.yaml", ["train_qa", "train_docs", "test_docs"]),
}


def load(name):
    path = os.path.join(PIT, name)
    return fill_placeholders(yaml.safe_load(open(path, encoding="utf-8")), recipe_context(PIT, "RUN"), path)


def source(path):
    return re.fullmatch(r"pit_study_(\w+)\.jsonl", os.path.basename(path)).group(1)


def rows(name):
    return [json.loads(line) for line in open(os.path.join(DATA, f"pit_study_{name}.jsonl"), encoding="utf-8")]


def test_arms_train_in_the_papers_order_with_the_same_test_document_budget():
    budgets, shared = {}, []
    for arm, (name, expected) in ARMS.items():
        config = load(name)
        stages = config["data_stages"]
        got = [{source(s["path"]) for s in st["datasets"]} if "datasets" in st else source(st["dataset_name"])
               for st in stages]
        assert got == expected, arm
        tokens_per_step = config["per_device_train_batch_size"] * config["block_size"]
        budget = 0.0
        for st in stages:
            weights = {source(s["path"]): s.get("weight", 1.0) for s in st.get("datasets", [])} or \
                {source(st["dataset_name"]): 1.0}
            budget += st["max_steps"] * tokens_per_step * weights.get("test_docs", 0) / sum(weights.values())
        budgets[arm] = budget
        shared.append({k: v for k, v in config.items() if k not in ("output_dir", "data_stages")})
    assert len(set(budgets.values())) == 1, budgets  # equal test-document tokens in every arm
    epochs = budgets["pit"] / sum(len(r["text"]) for r in rows("test_docs"))  # chars/token > 1: a lower bound
    assert epochs > 3, epochs  # several epochs on the test documents
    assert all(s == shared[0] for s in shared)  # same model, optimizer and seed handling in every arm
    # the arms with train data spend the same steps on it before the test documents (arm 2 only after them)
    before = {arm: sum(st["max_steps"] for st in load(ARMS[arm][0])["data_stages"][:-1])
              for arm in ("pit", "pit_qa_only", "qa_then_docs")}
    assert len(set(before.values())) == 1, before


def test_open_book_puts_each_train_document_right_before_its_own_qa_and_test_villages_stay_held_out():
    docs, qa, open_book, test_qa = rows("train_docs"), rows("train_qa"), rows("train_open_book"), rows("test_qa")
    by_village = {}
    for r in qa:
        by_village.setdefault(r["question"].split("村")[0], set()).add(r["text"])
    assert len(open_book) == len(docs)
    for doc, record in zip(docs, open_book):
        assert record["text"].startswith(doc["text"] + "\n")
        pairs = record["text"][len(doc["text"]) + 1:].split("\n")
        asked = [pairs[i] + "\n" + pairs[i + 1] for i in range(0, len(pairs), 2)]
        village = asked[0].removeprefix("質問:").split("村")[0]
        assert set(asked) == by_village[village] and len(asked) == 3
        assert doc["text"].count(village + "村") >= 3  # the document is about that village
    assert all(r["answer"] in r["choices"] and len(set(r["choices"])) == 8 for r in qa + test_qa)
    test_villages = {r["question"].split("村")[0] for r in test_qa}
    assert len(test_qa) > 45 and not test_villages & set(by_village)
    train_text = "".join(r["text"] for name in ("train_docs", "train_qa", "train_open_book") for r in rows(name))
    assert not any(v + "村" in train_text for v in test_villages)
    test_docs = [r["text"] for r in rows("test_docs")]
    for r in test_qa:  # every test answer is stated in the test documents about its village
        village = r["question"].split("村")[0]
        about = [t for t in test_docs if village + "村" in t]
        assert about and all(r["answer"] in t for t in about), r


def test_pit_study_data_is_deterministic_and_separate_from_the_other_files():
    a, b = prepare.pit_study(0), prepare.pit_study(0)
    assert a == b and set(a) == {f"pit_study_{n}.jsonl" for n in
                                 ("train_docs", "test_docs", "train_qa", "train_open_book", "test_qa")}
    for name, data in a.items():  # what is shipped is what the generator makes (test_tiny_data checks every file)
        assert [json.loads(line) for line in open(os.path.join(DATA, name), encoding="utf-8")] == data


def test_recipe_runs_every_arm_with_three_seeds_and_evaluates_and_judges_every_run(tmp_path):
    from llm_recipes.scripts import run_recipe

    recipe = yaml.safe_load(open(os.path.join(PIT, "recipe.yaml"), encoding="utf-8"))
    runs = Counter()
    for stage in run_recipe.expand_seeds(recipe["stages"]):  # one stage per arm with `seeds:` -> <arm>-s<seed>
        arm = next((a for a, (f, _) in ARMS.items() if stage["config"] == f), None)
        if arm:
            _, config = run_recipe.resolve(PIT, stage, recipe_context(PIT, str(tmp_path)),
                                           recipe_context(PIT)["run_dir"], {})
            assert config["output_dir"] == os.path.join(str(tmp_path), f"{arm}-s{config['seed']}") == \
                os.path.join(str(tmp_path), stage["name"])
            runs[arm] += 1
    assert set(runs) == set(ARMS) and min(runs.values()) >= 3
    evaluation = load("evaluate.yaml")
    evaluation["model_name_or_path"] = with_seeds(evaluation["model_name_or_path"], evaluation["seeds"])
    assert evaluation["tasks"] == ["pit_qa", "pit_qa_choice"] and evaluation["num_fewshot"] > 0
    assert all(os.path.basename(f["validation"]) == "pit_study_test_qa.jsonl" and
               os.path.basename(f["train"]) == "pit_study_train_qa.jsonl" for f in evaluation["task_data"].values())
    evaluated = {os.path.basename(p) for p in evaluation["model_name_or_path"]}
    judged = load("verdict.yaml")
    judged["arms"] = verdict.VerdictArguments(**judged).arms  # {arm: "<dir>-s{seed}"} -> one run per seed
    assert evaluated == {os.path.basename(p) for runs_ in judged["arms"].values() for p in runs_}
    assert set(judged["arms"]) == set(ARMS) and {(c["better"], c["worse"]) for c in judged["claims"]} == {
        ("pit", "cpt_then_it"), ("pit", "mixed")}
    assert judged["metrics"][0]["reference"] == {"cpt": 0.276, "cpt_then_it": 0.303, "mixed": 0.394, "pit": 0.454,
                                                 "pit_qa_only": 0.286, "qa_then_docs": 0.325}


def test_verdict_shows_reference_figures_beside_measured_ones(tmp_path):
    from llm_recipes.errors import RecipeError
    from llm_recipes.reporting.report import write_report

    arms = {}
    for arm, values in {"a": [0.5, 0.52, 0.51], "b": [0.3, 0.31, 0.29]}.items():
        arms[arm] = []
        for i, v in enumerate(values):
            write_report(str(tmp_path / f"{arm}{i}"), "pretrain", {"em": v})
            arms[arm].append(str(tmp_path / f"{arm}{i}"))
    metric = {"name": "em", "key": "em", "reference": {"a": 0.454}, "reference_label": "paper EM"}
    args = verdict.VerdictArguments(arms=arms, metrics=[metric], claims=[{"metric": "em", "better": "a", "worse": "b"}],
                                    output_dir=str(tmp_path / "v"))
    report = verdict.main(args)
    table = (tmp_path / "v" / "report.md").read_text(encoding="utf-8")
    assert "| paper EM |" in table and "| 0.454 |" in table and "| - |" in table
    assert report["verdicts"][0]["verdict"] == "reproduced" and report["references"]["em"]["a"] == 0.454
    args.metrics = [{**metric, "reference": {"c": 0.1}}]
    with pytest.raises(RecipeError, match="unknown arm"):
        verdict.main(args)
