"""Every recipe in recipes/ parses with its stage script's dataclasses (an unknown key would fail here)."""
import glob
import importlib
import os

import pytest
import yaml
from conftest import REPO

from recipekit.cli import parse

RECIPES = sorted(glob.glob(os.path.join(REPO, "recipes", "*", "recipe.yaml")))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_recipe_stages_parse(recipe, tmp_path):
    spec = yaml.safe_load(open(recipe, encoding="utf-8"))
    assert spec["stages"] and spec["run_dir"]
    for stage in spec["stages"]:
        module = importlib.import_module(os.path.splitext(os.path.basename(stage["script"]))[0])
        config = os.path.join(os.path.dirname(recipe), stage["config"])
        if stage.get("set"):  # the stage's own keys on top of a shared YAML, as run_recipe resolves them
            merged = {**yaml.safe_load(open(config, encoding="utf-8")), **stage["set"]}
            config = tmp_path / f"{stage['name']}.yaml"
            config.write_text(yaml.safe_dump(merged, allow_unicode=True), encoding="utf-8")
        parsed = parse(module.ARGUMENTS, ["--config", config])
        assert len(parsed) == len(module.ARGUMENTS)
        assert any(getattr(p, "output_dir", None) for p in parsed)


def test_every_stage_yaml_belongs_to_a_recipe():
    listed = {os.path.join(os.path.dirname(r), s["config"]) for r in RECIPES
              for s in yaml.safe_load(open(r, encoding="utf-8"))["stages"]}
    for sweep_file in glob.glob(os.path.join(REPO, "recipes", "*", "sweep.yaml")):  # a sweep's base recipe
        base = yaml.safe_load(open(sweep_file, encoding="utf-8"))["base_config"]
        listed.add(os.path.join(os.path.dirname(sweep_file), base))
    for path in glob.glob(os.path.join(REPO, "recipes", "*", "*.yaml")):
        assert path.endswith(("recipe.yaml", "sweep.yaml")) or path in listed, f"{path} is not a stage of its recipe"


@pytest.mark.parametrize("sweep_file", sorted(glob.glob(os.path.join(REPO, "recipes", "*", "sweep.yaml"))),
                         ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_every_sweep_point_parses(sweep_file, tmp_path):
    import sweep

    spec = yaml.safe_load(open(sweep_file, encoding="utf-8"))
    base = yaml.safe_load(open(os.path.join(os.path.dirname(sweep_file), spec["base_config"]), encoding="utf-8"))
    module = importlib.import_module(os.path.splitext(os.path.basename(spec["script"]))[0])
    points = sweep.expand_points(spec)
    assert len(points) >= 2
    for point in points:
        config = {**base, **(spec.get("set") or {}), **{k: v for k, v in point.items() if k not in ("name", "vars")}}
        path = tmp_path / f"{point['name']}.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        parse(module.ARGUMENTS, ["--config", str(path)])


def test_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    for path in glob.glob(os.path.join(REPO, "configs", "*.yaml")):
        config = load_config_from_file(path)
        assert config.num_processes >= 1, path
