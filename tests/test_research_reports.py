"""Research reporting: sweeps run every point per seed, reproducibly, and judge their claims from paired seeds; the
README's research tables are regenerated from the sweeps' reports."""
import json
import os

import pytest
import yaml
from conftest import REPO

from llm_recipes.errors import RecipeError
from llm_recipes.reporting.sweep import claim_line, evaluate_claim, parse_claims, summarize_points

POINTS = [("base", {"variant": "base"}), ("better", {"variant": "better"}), ("worse", {"variant": "worse"}),
          ("same", {"variant": "same"})]


def rows_for(values_by_point):
    return [{"name": name, "seed": seed, "variant": name, "eval_loss": value}
            for name, values in values_by_point.items() for seed, value in enumerate(values)]


def test_sweep_claims_get_verdicts_from_known_paired_differences():
    # eval loss (lower is better): "better" is 0.1 below base on every seed, "worse" 0.1 above, "same" differs from
    # base by noise of both signs
    rows = rows_for({"base": [2.00, 2.10, 1.95, 2.05], "better": [1.90, 2.01, 1.84, 1.96],
                     "worse": [2.11, 2.19, 2.06, 2.15], "same": [2.03, 2.06, 1.99, 2.02]})
    spec = {"claims": [{"name": "positive", "better": "better", "worse": "base", "metric": "eval_loss",
                        "higher_is_better": False},
                       {"name": "negative", "better": {"variant": "worse"}, "worse": "base", "metric": "eval_loss",
                        "higher_is_better": False},
                       {"name": "noise", "better": "same", "worse": "base", "metric": "eval_loss",
                        "higher_is_better": False}]}
    claims = parse_claims(spec, POINTS, "s.yaml")
    assert claims[1]["better"] == "worse"  # a mapping of labels selects its one point
    results = {c["name"]: evaluate_claim(c, rows, seeds=[0, 1, 2, 3]) for c in claims}
    assert [results[k]["verdict"] for k in ("positive", "negative", "noise")] == \
        ["reproduced", "contradicted", "inconclusive"]
    positive = results["positive"]
    assert positive["mean_difference"] == pytest.approx(0.0975) and 0 < positive["low"] < 0.0975 < positive["high"]
    assert positive["better_values"] == [1.90, 2.01, 1.84, 1.96] and positive["seeds"] == 4
    assert results["noise"]["low"] < 0 < results["noise"]["high"]
    line = claim_line(positive)
    assert line.endswith("-> **reproduced**") and "0.0975 [" in line and "4 seeds" in line
    # higher is better flips the sign: the same numbers as an accuracy contradict the claim
    flipped = parse_claims({"claim": {"better": "better", "worse": "base", "metric": "eval_loss"}}, POINTS, "s")[0]
    assert evaluate_claim(flipped, rows, [0, 1, 2, 3])["verdict"] == "contradicted"
    # a point left out of this run (--only): no verdict, and it says so
    assert evaluate_claim(claims[0], [r for r in rows if r["name"] != "better"], [0, 1, 2, 3])["verdict"] == "not run"
    summary = summarize_points(rows, POINTS, ["eval_loss"])
    assert summary[0]["seeds"] == 4 and summary[0]["eval_loss"] == pytest.approx(2.025)
    assert summary[0]["eval_loss_low"] < 2.025 < summary[0]["eval_loss_high"]


def test_claims_are_checked_before_any_run():
    with pytest.raises(RecipeError, match=r"claims\[0\].better: \{'variant': 'nope'\} matches 0 points"):
        parse_claims({"claims": [{"better": {"variant": "nope"}, "worse": "base", "metric": "m"}]}, POINTS, "s.yaml")
    with pytest.raises(RecipeError, match=r"claims\[0\]: expected \{better, worse, metric"):
        parse_claims({"claims": [{"better": "base", "metric": "m", "typo": 1}]}, POINTS, "s.yaml")


@pytest.mark.slow  # ~20 s: in `make test-slow` (CI), keeping `make test` inside 10 minutes
def test_a_sweep_run_twice_with_the_same_seeds_gives_identical_per_seed_figures(model_dir, tmp_path, capsys):
    """Each point x seed is its own subprocess; the same seed gives the same figures in a fresh run, another seed other
    figures, and a re-run skips finished runs."""
    base = {"dataset_name": os.path.join(REPO, "recipes", "tiny", "data", "docs.jsonl"),
            "tokenizer_name_or_path": str(model_dir), "output_dir": "unused", "block_size": 32, "hidden_size": 16,
            "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "max_steps": 2,
            "per_device_train_batch_size": 4, "logging_steps": 1, "save_strategy": "no", "report_to": "none"}
    (tmp_path / "pretrain.yaml").write_text(yaml.safe_dump(base))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"script": "scripts/pretrain.py", "base_config": "pretrain.yaml",
                                     "output_dir": str(tmp_path / "a"), "launcher": "python", "seeds": [0, 1],
                                     "points": [{"name": "tiny", "vars": {"layers": 1}}],
                                     "metrics": ["eval_loss", "loss_last", "train_loss"]}))
    from llm_recipes.research import sweep as sweep_script

    sweep_script.main([str(sweep)])  # in this process; each run is a subprocess of the stage script
    capsys.readouterr()
    sweep_script.main([str(sweep)])  # complete: nothing runs
    assert capsys.readouterr().out.count("complete, skipped") == 2
    sweep_script.main([str(sweep), "--output_dir", str(tmp_path / "b"), "--seeds", "1"])

    def figures(out):
        return {r["seed"]: (r["eval_loss"], r["loss_last"], r["train_loss"])
                for r in map(json.loads, open(tmp_path / out / "results.jsonl"))}

    a, b = figures("a"), figures("b")
    assert a[1] == b[1] and a[0] != a[1]  # the same seed reproduces exactly; the seed is really set
    assert (tmp_path / "a" / "tiny" / "seed1" / "report.json").exists()
    assert yaml.safe_load(open(tmp_path / "a" / "tiny-seed1.yaml"))["seed"] == 1
    summary = json.loads((tmp_path / "a" / "sweep.json").read_text())["points"][0]
    assert summary["seeds"] == 2 and summary["eval_loss"] == pytest.approx((a[0][0] + a[1][0]) / 2)
    assert "[" in (tmp_path / "a" / "report.md").read_text()  # mean [interval] cells


def test_research_tables_are_generated_from_sweep_reports(tmp_path):
    from llm_recipes.research import research_tables

    rows = rows_for({"base": [2.00, 2.10, 1.95], "better": [1.90, 2.01, 1.84]})
    points = POINTS[:2]
    claim = parse_claims({"claims": [{"name": "better wins", "better": "better", "worse": "base",
                                      "metric": "eval_loss", "higher_is_better": False}]}, points, "s")[0]
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({
        "commit": "abc123", "seeds": [0, 1, 2], "label_keys": ["variant"], "metric_keys": ["eval_loss"],
        "plot_metric": "eval_loss", "points": summarize_points(rows, points, ["eval_loss"]),
        "claims": [evaluate_claim(claim, rows, [0, 1, 2])], "runs_wall_time_s": 12.0}))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"output_dir": str(out), "claims": [{}]}))
    target = tmp_path / "section.md"
    target.write_text(f"intro kept\n{research_tables.BEGIN}\nold table\n{research_tables.END}\noutro kept\n")
    research_tables.main([str(sweep), "--output", str(target)])
    text = target.read_text()
    assert text.startswith("intro kept\n") and text.endswith("outro kept\n") and "old table" not in text
    assert "| better wins |" in text and "**reproduced**" in text and "abc123" in text
    assert "| better | better | 3 | 1.917 [" in text  # the point's mean over seeds and its interval


def test_research_tables_include_arm_comparisons_run_by_verdict_stages(tmp_path):
    """A recipe whose stage runs research/verdict.py (arms x seeds, as recipes/rho1) lands in the generated table with
    its computed verdict and the commit that produced it; a comparison not yet run is listed as such."""
    from llm_recipes.research import research_tables, verdict

    runs = {}
    for arm, losses in {"plain": [2.0, 2.1, 1.9], "new": [1.8, 1.85, 1.7]}.items():
        for seed, loss in enumerate(losses):
            run_dir = tmp_path / "outputs" / "study" / f"{arm}_s{seed}"
            run_dir.mkdir(parents=True)
            (run_dir / "report.json").write_text(json.dumps({"eval_loss": loss}))
            runs.setdefault(arm, []).append(str(run_dir))
    recipe = tmp_path / "recipes" / "study"
    recipe.mkdir(parents=True)
    (recipe / "recipe.yaml").write_text(yaml.safe_dump({
        "run_dir": str(tmp_path / "outputs" / "{recipe_name}"),
        "stages": [{"name": "verdict", "script": "research/verdict.py", "config": "verdict.yaml"}]}))
    spec = {"arms": runs, "output_dir": "{run_dir}/verdict",
            "metrics": [{"name": "held_out_loss", "key": "eval_loss", "higher_is_better": False}],
            "claims": [{"metric": "held_out_loss", "better": "new", "worse": "plain", "name": "new beats plain",
                        "source": "Someone 2024"}]}
    (recipe / "verdict.yaml").write_text(yaml.safe_dump(spec))
    (stage,) = research_tables.verdict_stages(str(tmp_path))
    assert "not run yet" in research_tables.render_arms([stage]).lower()
    verdict.main(verdict.VerdictArguments(**{**spec, "output_dir": stage[2]}))
    text = research_tables.render_arms([stage])
    assert "| study | new beats plain | Someone 2024 | new vs plain | held_out_loss |" in text
    assert "**reproduced**" in text and "| new | 1.78 [" in text  # the arm's mean over seeds and its interval


def test_a_recipe_reusing_another_recipes_verdict_file_is_named_by_its_own_folder():
    from llm_recipes.research import research_tables

    report = {"values": {"m": {"a": [1.0, 2.0], "b": [0.5, 0.7]}}, "commit": "abc", "seeds": 2}
    own = research_tables.verdict_section("x", os.path.join("recipes", "x", "verdict.yaml"), report)
    assert own.startswith("#### `recipes/x/verdict.yaml` (commit `abc`; 2 seeds")
    reused = research_tables.verdict_section("y", os.path.join("recipes", "y", "..", "x", "verdict.yaml"), report)
    assert reused.startswith("#### `recipes/y (recipes/x/verdict.yaml)`") and "| a | 1.5 [" in reused
    # the shipped variant (recipes/packing-vs-padding's `variants: unanswerable`) is found with its own run_dir
    stages = {recipe: out for recipe, _, out in research_tables.verdict_stages(REPO)}
    assert stages["packing-vs-padding --variant unanswerable"].endswith(
        os.path.join("packing-vs-padding-unanswerable", "verdict"))
