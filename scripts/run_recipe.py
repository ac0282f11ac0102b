"""Run a recipe folder's stages in order, each as its own `accelerate launch` process, then print one summary table.

    python scripts/run_recipe.py recipes/tiny
    python scripts/run_recipe.py recipes/tiny --run_dir /tmp/run --set pretrain.max_steps=20 --stages corpus,tokenizer

The recipe folder holds `recipe.yaml` (run_dir, accelerate config, the ordered stages) and one YAML per stage (stages
may share one YAML and differ by a `set:` mapping of keys). Each stage's config is resolved (stage `set:` keys, run_dir
moved, --set overrides applied) and saved as <run_dir>/configs/<stage>.yaml before it is launched, so a run records
exactly what it ran. A stage whose output_dir already holds its report.json (written last) is complete and skipped;
an incomplete one re-runs and resumes (--force re-runs everything).
"""

import argparse
import os
import subprocess
import sys
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # noqa: E402  (shared package next to this file)
from recipekit.cli import RecipeError, load_yaml, run_plain  # noqa: E402
from recipekit.report import markdown_table, read_report  # noqa: E402
from recipekit.summary import summarize_stage  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def move_run_dir(value, old, new):
    """Rewrite every path under the recipe's run_dir to the new run_dir (strings, lists and dicts alike)."""
    if isinstance(value, str) and (value == old or value.startswith(old.rstrip("/") + "/")):
        return new.rstrip("/") + value[len(old.rstrip("/")):]
    if isinstance(value, list):
        return [move_run_dir(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: move_run_dir(v, old, new) for k, v in value.items()}
    return value


def resolve(recipe_dir, stage, recipe, run_dir, overrides):
    config = load_yaml(os.path.join(recipe_dir, stage["config"]))
    config.update(stage.get("set", {}))  # keys the recipe sets for this stage only (one YAML, several stages)
    config = move_run_dir(config, recipe["run_dir"], run_dir)
    for key, value in overrides.get(stage["name"], {}).items():
        config[key] = yaml.safe_load(value)
    path = os.path.join(run_dir, "configs", f"{stage['name']}.yaml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, allow_unicode=True, sort_keys=False)
    return path, config


def parse_overrides(items, stage_names):
    overrides = {}
    for item in items:
        target, sep, value = item.partition("=")
        stage, dot, key = target.partition(".")
        if not sep or not dot or stage not in stage_names:
            raise RecipeError(f"--set {item}: expected STAGE.KEY=VALUE with STAGE one of {', '.join(stage_names)}")
        overrides.setdefault(stage, {})[key] = value
    return overrides


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe_dir")
    parser.add_argument("--run_dir", help="where outputs go (default: the recipe's run_dir)")
    parser.add_argument("--stages", help="comma-separated subset of stages to run (default: all)")
    parser.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE", help="override a stage key")
    parser.add_argument("--launcher", choices=["accelerate", "python"], default="accelerate")
    parser.add_argument("--force", action="store_true", help="re-run stages that are already complete")
    args = parser.parse_args(argv)

    recipe = load_yaml(os.path.join(args.recipe_dir, "recipe.yaml"))
    names = [s["name"] for s in recipe["stages"]]
    overrides = parse_overrides(args.set, names)
    selected = args.stages.split(",") if args.stages else names
    unknown = [s for s in selected if s not in names]
    if unknown:
        raise RecipeError(f"--stages: unknown stage(s) {unknown}; this recipe has {names}")
    run_dir = args.run_dir or recipe["run_dir"]
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
           "HF_DATASETS_OFFLINE": os.environ.get("HF_DATASETS_OFFLINE", "1"), "TOKENIZERS_PARALLELISM": "false"}
    rows, start = [], time.time()
    for stage in recipe["stages"]:
        if stage["name"] not in selected:
            continue
        config_path, config = resolve(args.recipe_dir, stage, recipe, run_dir, overrides)
        done = read_report(config["output_dir"])
        if done is not None and not args.force:  # report.json is written last: the stage completed
            print(f"\n=== stage {stage['name']}: complete ({config['output_dir']}/report.json), skipped", flush=True)
            rows.append([stage["name"], "skipped", summarize_stage(done)])
            continue
        script = os.path.join(REPO, stage["script"])
        if args.launcher == "accelerate":
            accelerate_config = os.path.join(REPO, stage.get("accelerate_config", recipe["accelerate_config"]))
            cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config, script]
        else:
            cmd = [sys.executable, script]
        print(f"\n=== stage {stage['name']}: {' '.join(cmd[2:] if args.launcher == 'accelerate' else cmd)} "
              f"--config {config_path}", flush=True)
        t0 = time.time()
        code = subprocess.call([*cmd, "--config", config_path], env=env)
        if code != 0:
            raise RecipeError(f"stage '{stage['name']}' failed with exit code {code} (its message is above)")
        report = read_report(config["output_dir"])
        if report is None:
            raise RecipeError(f"stage '{stage['name']}' exited 0 but wrote no {config['output_dir']}/report.json")
        rows.append([stage["name"], f"{time.time() - t0:.0f}s", summarize_stage(report)])
    table = markdown_table(["stage", "wall time", "result"], rows)
    with open(os.path.join(run_dir, "summary.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    print(f"\n## Summary of {args.recipe_dir} (run_dir {run_dir}, total {time.time() - start:.0f}s)\n\n{table}")


if __name__ == "__main__":
    run_plain(main)
