"""The shipped tiny data (and every recipe's copy of it) is what the generator makes, and its eval set gives nothing
away."""
import collections
import glob
import json
import os

import pytest
from conftest import REPO

from llm_recipes.runner import script_module

DATA = os.path.join(REPO, "recipes", "tiny", "data")
prepare = script_module(os.path.join(DATA, "prepare.py"))  # the generator lives next to its data


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The generator's files (seed 0, as shipped), written once for this module."""
    out = tmp_path_factory.mktemp("tiny_data")
    prepare.write(prepare.build(seed=0), out)
    return out


def test_generator_reproduces_shipped_files(generated):
    shipped = [n for n in os.listdir(DATA) if not n.endswith(".py") and n != "__pycache__"]  # all but prepare.py
    assert sorted(shipped) == sorted(os.listdir(generated))
    for name in shipped:
        assert (generated / name).read_text(encoding="utf-8") == open(os.path.join(DATA, name), encoding="utf-8").read(), name


def test_every_recipe_copy_of_a_tiny_file_is_byte_identical_to_the_generator(generated):
    """Recipes keep copies of the tiny files they read in their own data/ folder (a copied folder runs anywhere);
    a file there named like one of the generator's outputs must be that output byte for byte (refresh one with
    `python recipes/tiny/data/prepare.py --output_dir recipes/<recipe>/data --only <file>`). A data/ folder that ships
    its own build script (data/*.py, e.g. recipes/swallow-smollm2) holds that script's outputs instead."""
    names = set(os.listdir(generated))
    checked = []
    for data in sorted(glob.glob(os.path.join(REPO, "recipes", "*", "data"))):
        if glob.glob(os.path.join(data, "*.py")):
            continue
        for root, _, files in os.walk(data):
            for name in sorted(set(files) & names):
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    copy = f.read()
                assert copy == (generated / name).read_bytes(), (
                    f"{os.path.relpath(path, REPO)} differs from recipes/tiny/data/prepare.py's {name}: run python "
                    f"recipes/tiny/data/prepare.py --output_dir {os.path.relpath(root, REPO)} --only {name}")
                checked.append(path)
    assert any(not p.startswith(DATA + os.sep) for p in checked), "no recipe keeps a copy of a tiny file"


def test_only_writes_just_the_named_files_as_the_full_run_writes_them(generated, tmp_path, capsys):
    prepare.main(["--output_dir", str(tmp_path / "some"), "--only", "docs.jsonl,truth.json"])
    assert sorted(os.listdir(tmp_path / "some")) == ["docs.jsonl", "truth.json"]
    for name in ("docs.jsonl", "truth.json"):
        assert (tmp_path / "some" / name).read_bytes() == (generated / name).read_bytes(), name
    with pytest.raises(SystemExit):
        prepare.main(["--output_dir", str(tmp_path / "none"), "--only", "docs.jsonl,nope.jsonl"])
    assert "unknown ['nope.jsonl']" in capsys.readouterr().err and not (tmp_path / "none").exists()


def test_eval_answers_spread_evenly_and_distractors_same_kind():
    rows = [json.loads(line) for line in open(os.path.join(DATA, "eval_mc.jsonl"), encoding="utf-8")]
    positions = collections.Counter(r["label"] for r in rows)
    assert set(positions) == {0, 1, 2, 3, 4} and max(positions.values()) - min(positions.values()) <= 1
    kinds = {kind: {v[0] for v in spec[3]} for kind, spec in prepare.ATTRIBUTES.items()}
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
