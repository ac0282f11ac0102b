"""Every recipe in recipes/ parses with its stage script's dataclasses (an unknown key would fail here)."""
import glob
import os
import re

import pytest
import yaml
from conftest import REPO

from llm_recipes.config import fill_placeholders, parse, recipe_context
from llm_recipes.runner import script_module, script_path

RECIPES = sorted(glob.glob(os.path.join(REPO, "recipes", "*", "recipe.yaml")))
SWEEPS = sorted(glob.glob(os.path.join(REPO, "recipes", "*", "sweep*.yaml")))
STUDIES = ["depth-width-sweep", "arch-ablation", "hparam-sweep", "dpo-data-efficiency", "scaling-law"]


def stage_module(script, folder=None):
    assert os.path.isfile(script_path(script, folder)), script
    return script_module(script, folder)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_recipe_stages_parse(recipe, tmp_path):
    """Each stage resolves as run_recipe resolves it (placeholders, set: keys, another run_dir, and each of the
    recipe's `variants:`) and parses; its output_dir lies under run_dir and it reads no other recipe folder's files by
    a path from the working directory."""
    from llm_recipes.scripts import run_recipe

    spec = yaml.safe_load(open(recipe, encoding="utf-8"))
    assert spec["stages"] and spec["run_dir"]
    folder = os.path.dirname(recipe)
    run_dir = str(tmp_path / "run")
    context = recipe_context(folder, run_dir)
    stages = spec["stages"] = run_recipe.expand_seeds(spec["stages"])  # a seeded stage resolves once per seed
    variants = [run_recipe.recipe_overrides(spec, recipe, v, [], context) for v in [None, *(spec.get("variants") or {})]]
    for stage, overrides in [(s, o) for o in variants for s in stages]:
        module = stage_module(stage["script"], folder)
        path, config = run_recipe.resolve(folder, stage, context, recipe_context(folder)["run_dir"], overrides)
        parsed = parse(module.ARGUMENTS, ["--config", path])
        assert len(parsed) == len(module.ARGUMENTS)
        assert config["output_dir"].startswith(run_dir + os.sep), (stage["name"], config["output_dir"])
        raw = yaml.safe_dump(yaml.safe_load(open(os.path.join(folder, stage["config"]), encoding="utf-8")))
        assert "recipes/" not in raw, f"{stage['name']}: name recipe files as {{recipe_dir}}/..., not recipes/..."


def test_every_stage_yaml_belongs_to_a_recipe():
    listed = {os.path.join(os.path.dirname(r), s["config"]) for r in RECIPES
              for s in yaml.safe_load(open(r, encoding="utf-8"))["stages"]}
    for sweep_file in SWEEPS:  # a sweep's base recipe, and other points' base recipes
        spec = yaml.safe_load(open(sweep_file, encoding="utf-8"))
        for base in [spec["base_config"], *(p["base_config"] for p in spec.get("points", []) if "base_config" in p)]:
            listed.add(os.path.join(os.path.dirname(sweep_file), base))
    for path in glob.glob(os.path.join(REPO, "recipes", "*", "*.yaml")):
        assert path.endswith("recipe.yaml") or path in SWEEPS or path in listed, f"{path} is not a stage of its recipe"


def test_a_stage_config_is_named_after_its_stage_or_its_script():
    """`cpt` reads cpt.yaml (or, for a config several arms share with `set:` keys per arm, the script's name: sft.yaml
    for scripts/sft.py); no third name for the same stage (pit's old `arm1_cpt.yaml`). The stage `evaluate` runs
    scripts/evaluation.py with evaluate.yaml: a script named evaluate.py would shadow Hugging Face's `evaluate`."""
    def norm(name):
        return os.path.splitext(os.path.basename(name))[0].replace("-", "_")

    odd = [(os.path.basename(os.path.dirname(r)), s["name"], s["config"]) for r in RECIPES
           for s in yaml.safe_load(open(r, encoding="utf-8"))["stages"]
           if norm(s["config"]) not in {norm(s["name"]), norm(s["script"])}]
    assert not odd, odd


@pytest.mark.parametrize("sweep_file", SWEEPS, ids=lambda p: "/".join(p.split(os.sep)[-2:]))
def test_every_sweep_point_parses(sweep_file, tmp_path):
    """Every point of every sweep (each with its own script and base recipe) parses; a study's claims name its points
    and it runs at least 3 seeds."""
    from llm_recipes.reporting.sweep import parse_claims
    from llm_recipes.research import sweep

    folder = os.path.dirname(sweep_file)
    context = recipe_context(folder)
    spec = fill_placeholders(yaml.safe_load(open(sweep_file, encoding="utf-8")), context, sweep_file)
    base = fill_placeholders(yaml.safe_load(open(os.path.join(folder, spec["base_config"]), encoding="utf-8")),
                             context, sweep_file)
    points = sweep.expand_points(spec)
    plan = sweep.plan_points(spec, points, base, spec.get("set") or {}, str(tmp_path), sweep_file, folder, context)
    assert len(plan) >= 2 and spec["plot"]["kind"] in ("line", "heatmap", "bar")  # every sweep writes a PNG
    for name, _, config, script in plan:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**config, "seed": 0}, allow_unicode=True), encoding="utf-8")
        parse(stage_module(script).ARGUMENTS, ["--config", str(path)])
    if os.path.basename(folder) in STUDIES:
        labels = [(p["name"], p.get("vars") or {k: v for k, v in p.items() if k in (spec.get("grid") or {})})
                  for p in points]
        assert parse_claims(spec, labels, sweep_file) and len(spec["seeds"]) >= 3, sweep_file


def test_every_study_has_a_real_japanese_variant_or_is_one():
    for study in ("depth-width-sweep", "arch-ablation", "hparam-sweep", "scaling-law"):
        texts = [open(p, encoding="utf-8").read() for p in glob.glob(os.path.join(REPO, "recipes", study, "*.yaml"))]
        assert any("{recipe_dir}/../../data/jglue-v1.3/ja_wikipedia_paragraphs.jsonl" in t for t in texts), study


def test_sweep_label_that_disagrees_with_the_point_fails_before_any_run(tmp_path):
    from llm_recipes.errors import RecipeError
    from llm_recipes.research import sweep

    spec = {"points": [{"name": "ok", "vars": {"learning_rate": 0.1}, "learning_rate": 0.1},
                       {"name": "sgd", "vars": {"learning_rate": 3e-3, "optim": "sgd"}, "optim": "sgd",
                        "learning_rate": 0.1}]}
    with pytest.raises(RecipeError, match=r"point 'sgd' has vars.learning_rate=0.003 but runs learning_rate=0.1"):
        sweep.plan_points(spec, sweep.expand_points(spec), {"learning_rate": 1e-3}, {}, str(tmp_path), "s.yaml")
    assert not list(tmp_path.iterdir())  # nothing was started


def test_sweep_line_plot_groups_by_several_keys_and_leaves_out_other_points(tmp_path):
    from llm_recipes.reporting.sweep import plot_sweep

    rows = [{"name": f"p{i}", "lr": lr, "wd": wd, "std": std, "loss": 3 - lr * 100 + wd + std}
            for i, (lr, wd, std) in enumerate([(a, b, c) for a in (1e-3, 1e-2) for b in (0, 0.1) for c in (0.02, 0.006)])]
    rows.append({"name": "opt_sgd", "lr": 0.1, "optim": "sgd", "loss": 9.0})
    note = plot_sweep(str(tmp_path / "p.png"), rows, {"kind": "line", "x": "lr", "y": "loss", "group": ["wd", "std"],
                                                     "logx": True, "higher_is_better": False})
    assert note.splitlines()[0] == "best loss: 2.006 at lr=0.01 (wd=0, std=0.006)"
    assert "opt_sgd" in note.splitlines()[1] and (tmp_path / "p.png").stat().st_size > 0


def test_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    for path in glob.glob(os.path.join(REPO, "configs", "*.yaml")):
        config = load_config_from_file(path)
        assert config.num_processes >= 1, path


def test_sweep_bar_plot_orders_points_best_first(tmp_path):
    from llm_recipes.reporting.sweep import plot_sweep

    rows = [{"name": "a", "variant": "SwiGLU", "loss": 1.77}, {"name": "b", "variant": "GeGLU", "loss": 1.72},
            {"name": "c", "variant": "GPT-2", "loss": 1.86}, {"name": "d", "variant": "broken", "loss": None}]
    note = plot_sweep(str(tmp_path / "bar.png"), rows, {"kind": "bar", "x": "variant", "y": "loss",
                                                         "higher_is_better": False})
    assert note == "best loss: 1.72 at variant=GeGLU" and (tmp_path / "bar.png").stat().st_size > 0


RECIPE_DIR_PATH = re.compile(r"\{recipe_dir\}([^\s\"'`,\]{}()]*)")


def test_no_recipe_reads_another_recipe_folder():
    """A recipe is self-contained: every {recipe_dir} path in its YAML stays inside its own folder (data it needs lives
    in its data/ or comes from a stage), so a copied folder runs anywhere; the one way out is the repository's shared
    {recipe_dir}/../../data/. ({run_dir}/../ paths name another run's outputs, not a recipe folder.)"""
    bad = []
    for path in sorted(glob.glob(os.path.join(REPO, "recipes", "*", "**", "*.y*ml"), recursive=True)):
        text = open(path, encoding="utf-8").read()
        for lineno, line in enumerate(text.splitlines(), 1):
            for rest in RECIPE_DIR_PATH.findall(line):
                rest = rest.removeprefix("/../../data/")  # the repository's shared data folder
                if ".." in rest.split("/"):
                    bad.append(f"{os.path.relpath(path, REPO)}:{lineno}: {line.strip()}")
    assert not bad, "copy the file into the recipe's data/ and name it {recipe_dir}/data/...:\n" + "\n".join(bad)


# Files a recipe keeps as copies of another recipe's (the tiny world's copies are checked in tests/test_tiny_data.py).
COPIES = {("eval-ja-suite", "eval-jglue"): ["jcommonsenseqa-train-v1.3.json", "jcommonsenseqa-valid-v1.3.json",
                                           "jnli-train-v1.3.json", "jnli-valid-v1.3.json", "jsquad-valid-v1.3.json",
                                           "marc_ja-valid.json"],
          ("self-instruct-ja", "self-instruct"): ["seed_tasks.jsonl"]}


@pytest.mark.parametrize("recipe, origin", sorted(COPIES), ids=lambda v: v)
def test_copied_data_files_stay_byte_identical_to_their_origin(recipe, origin):
    for name in COPIES[recipe, origin]:
        with open(os.path.join(REPO, "recipes", recipe, "data", name), "rb") as a, \
                open(os.path.join(REPO, "recipes", origin, "data", name), "rb") as b:
            assert a.read() == b.read(), f"recipes/{recipe}/data/{name} is no longer a copy of recipes/{origin}'s"


def test_a_variant_runs_the_recipe_with_its_keys_in_its_own_run_dir(tmp_path, monkeypatch):
    """`--variant unanswerable` (recipes/packing-vs-padding's `variants:`) sets the data stage's key in every stage it
    names (a --set still wins) and runs in outputs/<recipe>-<variant>; an unknown variant fails in one line naming the
    recipe.yaml and the known variants, before anything runs."""
    import json

    from llm_recipes.errors import RecipeError
    from llm_recipes.scripts import run_recipe

    folder = os.path.join(REPO, "recipes", "packing-vs-padding")
    launched = []

    def fake_launch(script, config_path, *args, **kwargs):  # no training: the resolved config, and a report
        config = yaml.safe_load(open(config_path, encoding="utf-8"))
        launched.append((os.path.basename(script), config))
        os.makedirs(config["output_dir"], exist_ok=True)
        with open(os.path.join(config["output_dir"], "report.json"), "w", encoding="utf-8") as f:
            json.dump({"stage": "fake"}, f)
        return 0

    monkeypatch.setattr(run_recipe, "launch", fake_launch)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipeError) as error:
        run_recipe.main([folder, "--variant", "nope", "--launcher", "python"])
    message = str(error.value)
    assert "\n" not in message and message.startswith(os.path.join(folder, "recipe.yaml"))
    assert "no variant 'nope'" in message and "known variants: unanswerable" in message and not launched

    run_recipe.main([folder, "--variant", "unanswerable", "--stages", "data,sft_packed", "--launcher", "python"])
    variant_dir = os.path.join("outputs", "packing-vs-padding-unanswerable")
    (_, data), *sft = launched
    assert data["unanswerable_share"] == 0.25 and data["output_dir"] == os.path.join(variant_dir, "data")
    assert [c["output_dir"] for _, c in sft] == [os.path.join(variant_dir, f"sft_packed-s{s}") for s in (1, 2, 3)]
    assert all(c["batch_layout"] == "packed" and "unanswerable_share" not in c for _, c in sft)
    assert os.path.isfile(os.path.join(variant_dir, "configs", "data.yaml"))

    launched.clear()  # the recipe itself: no share, its own run_dir; a --set wins over the variant's key
    run_recipe.main([folder, "--stages", "data", "--launcher", "python"])
    run_recipe.main([folder, "--variant", "unanswerable", "--stages", "data", "--set", "data.unanswerable_share=0.5",
                     "--run_dir", "half", "--launcher", "python"])
    (_, plain), (_, half) = launched
    assert "unanswerable_share" not in plain and plain["output_dir"] == os.path.join("outputs", "packing-vs-padding",
                                                                                     "data")
    assert half["unanswerable_share"] == 0.5 and half["output_dir"] == os.path.join("half", "data")


SEEDED = ["pit", "packing-vs-padding", "rho1", "ul2", "rso", "slick", "slick-entityquestions", "swallow-smollm2"]


@pytest.mark.parametrize("name", SEEDED)
def test_seeded_arms_are_listed_once_and_every_run_they_name_is_a_stage_of_the_recipe(name, tmp_path):
    """Recipes whose arms run with `seeds:`: each arm is one stage in recipe.yaml, and the evaluation, probe, track and
    verdict stages (`{seed}` paths with `seeds:`) name exactly runs that the recipe's stages write, one per seed."""
    from llm_recipes.scripts import run_recipe

    folder = os.path.join(REPO, "recipes", name)
    spec = yaml.safe_load(open(os.path.join(folder, "recipe.yaml"), encoding="utf-8"))
    assert not [s["name"] for s in spec["stages"] if re.search(r"[_-]s\d+$", s["name"])]  # no hand-unrolled seeds
    run_dir = str(tmp_path / "run")
    context = recipe_context(folder, run_dir)
    outputs, readers = [], []
    for stage in run_recipe.expand_seeds(spec["stages"]):
        module = stage_module(stage["script"], folder)
        path, config = run_recipe.resolve(folder, stage, context, recipe_context(folder)["run_dir"], {})
        outputs.append(config["output_dir"])
        (args, *_) = parse(module.ARGUMENTS, ["--config", path])
        named = [*(getattr(args, "arms", None) or {}).values(), getattr(args, "runs", None) or [],
                 [getattr(args, "model_name_or_path", None)] if module.__name__.endswith("evaluation") else []]
        readers.append((stage["name"], [p for runs in named for p in ([runs] if isinstance(runs, str) else runs)
                                        if isinstance(p, str)]))
    for stage_name, paths in readers:
        for path in paths:
            assert "{seed}" not in path, (stage_name, path)
            if path.startswith(run_dir + os.sep):
                assert any(path == o or path.startswith(o + os.sep) for o in outputs), (stage_name, path)
