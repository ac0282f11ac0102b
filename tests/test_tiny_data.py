"""The shipped tiny data is what the generator makes, and its eval set gives nothing away."""
import collections
import json
import os

from conftest import REPO

from llm_recipes.scripts import make_tiny_data

DATA = os.path.join(REPO, "recipes", "tiny", "data")


def test_generator_reproduces_shipped_files(tmp_path):
    make_tiny_data.write(make_tiny_data.build(seed=0), tmp_path)
    for name in os.listdir(DATA):
        assert (tmp_path / name).read_text(encoding="utf-8") == open(os.path.join(DATA, name), encoding="utf-8").read(), name


def test_eval_answers_spread_evenly_and_distractors_same_kind():
    rows = [json.loads(line) for line in open(os.path.join(DATA, "eval_mc.jsonl"), encoding="utf-8")]
    positions = collections.Counter(r["label"] for r in rows)
    assert set(positions) == {0, 1, 2, 3, 4} and max(positions.values()) - min(positions.values()) <= 1
    kinds = {kind: {v[0] for v in spec[3]} for kind, spec in make_tiny_data.ATTRIBUTES.items()}
    for r in rows:
        choices = [r[f"choice{i}"] for i in range(5)]
        assert len(set(choices)) == 5
        assert any(set(choices) <= values for values in kinds.values()), choices


def test_eval_villages_are_held_out_of_sft_and_dpo():
    def villages(path, key):
        text = open(os.path.join(DATA, path), encoding="utf-8").read()
        return {q.split("村")[0] for q in [json.loads(line)[key] if key != "messages" else
                                          json.loads(line)["messages"][0]["content"] for line in text.splitlines()]}

    test = villages("eval_mc.jsonl", "question")
    assert test and not test & villages("sft.jsonl", "messages")
    dpo = {json.loads(line)["prompt"][0]["content"].split("村")[0]
           for line in open(os.path.join(DATA, "dpo.jsonl"), encoding="utf-8")}
    assert not test & dpo
