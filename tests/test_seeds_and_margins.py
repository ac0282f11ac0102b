"""A stage declared once with `seeds:` runs once per seed; verdicts with a margin (non-inferiority), a one-run
baseline against seeded runs, and per-document pairs."""

import json
import os

import pytest

from llm_recipes.config import fill_placeholders, with_seeds
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.stats import CONTRADICTED, INCONCLUSIVE, REPRODUCED, verdict


def test_a_stage_with_seeds_expands_and_overrides_reach_every_seed(tmp_path):
    from llm_recipes.scripts import run_recipe

    stages = run_recipe.expand_seeds([{"name": "a", "script": "x", "config": "a.yaml"},
                                      {"name": "cpt", "script": "x", "config": "c.yaml", "seeds": [1, 2]}])
    assert [s["name"] for s in stages] == ["a", "cpt-s1", "cpt-s2"]
    assert stages[1]["set"]["seed"] == 1 and stages[2]["group"] == "cpt"
    (tmp_path / "c.yaml").write_text("output_dir: '{run_dir}/cpt-s{seed}'\nmax_steps: 5\n", encoding="utf-8")
    context = {"recipe_dir": str(tmp_path), "recipe_name": "r", "run_dir": str(tmp_path / "run")}
    _, config = run_recipe.resolve(str(tmp_path), stages[2], context, str(tmp_path / "run"),
                                   {"cpt": {"max_steps": "40"}, "cpt-s2": {"learning_rate": "0.1"}})
    assert config["output_dir"] == str(tmp_path / "run" / "cpt-s2") and config["seed"] == 2
    assert config["max_steps"] == 40 and config["learning_rate"] == 0.1


def test_seed_placeholders_stay_for_stages_that_expand_them():
    assert fill_placeholders("{run_dir}/cpt-s{seed}", {"run_dir": "out"}, "x") == "out/cpt-s{seed}"
    assert with_seeds(["a", "b-s{seed}"], [1, 2, 3]) == ["a", "b-s1", "b-s2", "b-s3"]
    assert with_seeds({"x": "r-{seed}"}, [7]) == {"x": ["r-7"]}


def test_margin_turns_a_claim_into_non_inferiority():
    # lower is better: better is 3 % worse than worse; within a 5 % margin -> reproduced, within 1 % -> contradicted
    worse, better = [1.00, 1.01, 0.99], [1.03, 1.04, 1.02]
    assert verdict(better, worse, higher_is_better=False)["verdict"] == CONTRADICTED
    assert verdict(better, worse, higher_is_better=False, margin=0.05)["verdict"] == REPRODUCED
    assert verdict(better, worse, higher_is_better=False, margin=0.01)["verdict"] == CONTRADICTED
    assert verdict([1.03, 1.0, 1.06], worse, higher_is_better=False, margin=0.03)["verdict"] == INCONCLUSIVE


def _report(folder, **values):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "report.json"), "w", encoding="utf-8") as f:
        json.dump(values, f)


def test_verdict_stage_seeds_baseline_and_per_document_lists(tmp_path):
    from llm_recipes.research import verdict as stage

    _report(tmp_path / "base", loss=2.0, per_doc=[1.0, 1.2, 0.9, 1.1])
    _report(tmp_path / "other", loss=9.0, per_doc=[0.5, 0.7, 0.4, 0.6])
    for seed, loss in ((1, 1.5), (2, 1.6), (3, 1.4)):
        _report(tmp_path / f"run-s{seed}", loss=loss)
    args = stage.VerdictArguments(
        arms={"base": str(tmp_path / "base"), "other": str(tmp_path / "other"), "cpt": str(tmp_path / "run-s{seed}")},
        seeds=[1, 2, 3], output_dir=str(tmp_path / "v"),
        metrics=[{"name": "loss", "key": "loss", "higher_is_better": False, "arms": ["base", "cpt"]},
                 {"name": "per_doc", "key": "per_doc", "higher_is_better": False, "arms": ["base", "other"]}],
        claims=[{"metric": "loss", "better": "cpt", "worse": "base"},
                {"metric": "per_doc", "better": "other", "worse": "base"},
                {"metric": "loss", "better": "cpt", "worse": "base", "margin": 0.1}])
    report = stage.main(args)
    first, second, third = report["verdicts"]
    assert first["verdict"] == REPRODUCED and first["seeds"] == 3  # one baseline run against three seeds
    assert second["verdict"] == REPRODUCED and second["seeds"] == 4  # four documents paired
    assert third["verdict"] == REPRODUCED and third["margin"] == pytest.approx(0.2)
    with pytest.raises(RecipeError, match="measured for arms"):
        stage.main(stage.VerdictArguments(arms=args.arms, seeds=[1, 2, 3], output_dir=str(tmp_path / "w"),
                                          metrics=args.metrics, claims=[{"metric": "per_doc", "better": "cpt",
                                                                         "worse": "base"}]))
