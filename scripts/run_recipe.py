"""Run a recipe folder's stages in order, each as its own `accelerate launch` process, then print one summary table.

    python scripts/run_recipe.py recipes/tiny
    python scripts/run_recipe.py recipes/tiny --run_dir /tmp/run --set pretrain.max_steps=20 --stages corpus,tokenizer
    python scripts/run_recipe.py recipes/packing-vs-padding --variant unanswerable   # a variant its recipe.yaml names
    llm-recipe recipes/tiny                     # the same, from any directory once the package is installed

The recipe folder holds `recipe.yaml` (run_dir, accelerate config, the ordered stages) and one YAML per stage (stages
may share one YAML and differ by a `set:` mapping of keys). Paths in the stage files say `{recipe_dir}` (this folder)
and `{run_dir}`, so a copied folder runs as it is; `run_dir: outputs/{recipe_name}` gives each copy its own outputs.
Each stage's config is resolved (placeholders, stage `set:` keys, run_dir moved, --set overrides) and saved as
<run_dir>/configs/<stage>.yaml before it is launched. A stage is complete when its report.json records this same
resolved configuration: it is skipped. If it records another one, the run stops and names the changed keys (--force
re-runs); an incomplete stage re-runs and resumes from its last checkpoint.

A recipe.yaml may name variants of the recipe, each a few STAGE.KEY: VALUE overrides (as --set gives them; --set still
wins), e.g. `variants: {unanswerable: {data.unanswerable_share: 0.25}}`; `--variant unanswerable` runs the recipe with
them, by default in <run_dir>-<variant> (outputs/{recipe_name}-unanswerable), so a variant needs no folder of its own.
"""

import argparse
import os
import time

import yaml

from llm_recipes.config import fill_placeholders, load_yaml, recipe_context, run_plain, walk
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import markdown_table
from llm_recipes.reporting.summary import summarize_stage
from llm_recipes.runner import completed, find_file, launch, record_config, script_path


def move_run_dir(value, old, new):
    """Rewrite every path under the recipe's literal run_dir to the new run_dir (strings, lists and dicts alike)."""
    def move(v):
        if isinstance(v, str) and (v == old or v.startswith(old.rstrip("/") + "/")):
            return new.rstrip("/") + v[len(old.rstrip("/")):]
        return v
    return walk(value, move)


def expand_seeds(stages):
    """A stage with `seeds: [1, 2, 3]` runs once per seed, as <name>-s<seed> with its `seed` key set and {seed} filled
    in its file and `set:` values; `--stages <name>` and `--set <name>.KEY=V` reach every seed's stage."""
    out = []
    for stage in stages:
        for seed in stage.get("seeds") or [None]:
            one = {k: v for k, v in stage.items() if k != "seeds"}
            if seed is not None:
                one.update(name=f"{stage['name']}-s{seed}", seed=seed, set={**stage.get("set", {}), "seed": seed})
            out.append({**one, "group": stage["name"]})
    return out


def resolve(recipe_dir, stage, context, default_run_dir, overrides):
    """A stage's configuration as it will run, saved under run_dir/configs/."""
    path = os.path.join(recipe_dir, stage["config"])
    config = {**load_yaml(path), **stage.get("set", {})}  # keys the recipe sets for this stage only
    seeded = {**context, "seed": str(stage["seed"])} if stage.get("seed") is not None else context
    config = fill_placeholders(config, seeded, path)
    config = move_run_dir(config, default_run_dir, context["run_dir"])
    group = stage.get("group", stage["name"])
    for key, value in {**overrides.get(group, {}), **overrides.get(stage["name"], {})}.items():
        config[key] = yaml.safe_load(value)
    saved = os.path.join(context["run_dir"], "configs", f"{stage['name']}.yaml")
    os.makedirs(os.path.dirname(saved), exist_ok=True)
    with open(saved, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, allow_unicode=True, sort_keys=False)
    return saved, config


def parse_overrides(items, stage_names, where="--set"):
    overrides = {}
    for item in items:
        target, sep, value = item.partition("=")
        stage, dot, key = target.partition(".")
        if not sep or not dot or stage not in stage_names:
            raise RecipeError(f"{where} {item}: expected STAGE.KEY=VALUE with STAGE one of {', '.join(stage_names)}")
        overrides.setdefault(stage, {})[key] = value
    return overrides


def variant_overrides(recipe, recipe_file, variant, context):
    """recipe.yaml's `variants: {name: {STAGE.KEY: value}}`: one variant's keys as --set items (placeholders filled)."""
    variants = recipe.get("variants") or {}
    if not isinstance(variants, dict) or variant not in variants:
        known = ", ".join(map(str, variants)) if isinstance(variants, dict) and variants else "none"
        raise RecipeError(f"{recipe_file}: no variant '{variant}' (known variants: {known})")
    if not isinstance(variants[variant], dict):
        raise RecipeError(f"{recipe_file}: variant '{variant}' must be a mapping of STAGE.KEY: value")
    keys = fill_placeholders(variants[variant], context, recipe_file)
    return [f"{target}={yaml_text(value)}" for target, value in keys.items()]


def yaml_text(value):
    """A value as one line of YAML that yaml.safe_load reads back as it was (an override's text, as --set gives it)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=2**31)
    return text.removesuffix("\n...\n").strip()


def stage_names(stages):
    """Every name --stages / --set accept: each seeded stage's group (`cpt`) and each stage (`cpt-s2`)."""
    return list(dict.fromkeys(n for s in stages for n in (s["group"], s["name"])))


def recipe_overrides(recipe, recipe_file, variant, sets, context):
    """{stage: {key: value}} from a variant's keys (if one is named) and --set items; --set wins."""
    names = stage_names(recipe["stages"])
    items = variant_overrides(recipe, recipe_file, variant, context) if variant else []
    overrides = parse_overrides(items, names, where=f"{recipe_file}: variant '{variant}':")
    for stage, keys in parse_overrides(sets, names).items():
        overrides.setdefault(stage, {}).update(keys)
    return overrides


def variant_run_dir(recipe_dir, variant):
    """Where a variant runs by default: the recipe's run_dir with -<variant> (outputs/{recipe_name}-<variant>)."""
    return f"{recipe_context(recipe_dir)['run_dir']}-{variant}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe_dir")
    parser.add_argument("--run_dir", help="where outputs go (default: the recipe's run_dir)")
    parser.add_argument("--stages", help="comma-separated subset of stages to run (default: all)")
    parser.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE", help="override a stage key")
    parser.add_argument("--launcher", choices=["accelerate", "python"], default="accelerate")
    parser.add_argument("--force", action="store_true", help="re-run stages even if they completed")
    parser.add_argument("--variant", help="run a variant named in recipe.yaml's `variants:` (its STAGE.KEY overrides; "
                                          "run_dir defaults to <run_dir>-<variant>)")
    args = parser.parse_args(argv)

    recipe_file = os.path.join(args.recipe_dir, "recipe.yaml")
    recipe = load_yaml(recipe_file)
    if not isinstance(recipe, dict) or not recipe.get("stages") or not recipe.get("run_dir"):
        raise RecipeError(f"{recipe_file}: needs run_dir and a list of stages")
    recipe["stages"] = expand_seeds(recipe["stages"])
    names = stage_names(recipe["stages"])
    chosen = args.run_dir or (variant_run_dir(args.recipe_dir, args.variant) if args.variant else None)
    context = recipe_context(args.recipe_dir, chosen)
    overrides = recipe_overrides(recipe, recipe_file, args.variant, args.set, context)
    selected = args.stages.split(",") if args.stages else names
    unknown = [s for s in selected if s not in names]
    if unknown:
        raise RecipeError(f"--stages: unknown stage(s) {unknown}; this recipe has {names}")
    default_run_dir = recipe_context(args.recipe_dir)["run_dir"]
    run_dir = context["run_dir"]
    what = args.recipe_dir + (f" --variant {args.variant}" if args.variant else "")
    rows, start = [], time.time()
    for stage in recipe["stages"]:
        if stage["name"] not in selected and stage["group"] not in selected:
            continue
        config_path, config = resolve(args.recipe_dir, stage, context, default_run_dir, overrides)
        where = f"stage '{stage['name']}'"
        done = completed(config["output_dir"], config, args.force, where, root=run_dir)
        if done is not None:
            print(f"\n=== stage {stage['name']}: complete with this configuration "
                  f"({config['output_dir']}/report.json), skipped", flush=True)
            rows.append([stage["name"], "skipped", summarize_stage(done)])
            continue
        print(f"\n=== stage {stage['name']}", flush=True)
        accelerate_config = find_file(stage.get("accelerate_config", recipe.get("accelerate_config",
                                                                               "configs/cpu.yaml")), args.recipe_dir)
        t0 = time.time()
        code = launch(script_path(stage["script"], args.recipe_dir), config_path, args.launcher, accelerate_config,
                      env={"LLM_RECIPE": f"{what} (stage {stage['name']})"})
        if code != 0:
            raise RecipeError(f"{where} failed with exit code {code} (its message is above)")
        report = record_config(config["output_dir"], config, root=run_dir)
        rows.append([stage["name"], f"{time.time() - t0:.0f}s", summarize_stage(report)])
    table = markdown_table(["stage", "wall time", "result"], rows)
    with open(os.path.join(run_dir, "summary.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    print(f"\n## Summary of {what} (run_dir {run_dir}, total {time.time() - start:.0f}s)\n\n{table}")
    return rows


def cli():
    run_plain(main)


if __name__ == "__main__":
    cli()
