"""Run a sweep: every point of a grid (or an explicit list) is one run of a stage script, each its own
`accelerate launch` process with its own resolved config; results go to one JSONL, a table and a plot.

    python scripts/sweep.py recipes/dpo-data-efficiency/sweep.yaml [--output_dir DIR] [--set key=value ...]

Sweep file keys: `script`, `base_config` (a stage recipe, relative to the sweep file), `output_dir`,
`accelerate_config`, `grid` ({recipe key: [values]}, Cartesian product) and/or `points` ([{name, vars: {label: value},
<recipe key>: value}]: `vars` only label the point in the results),
`set` (overrides for every point), `metrics` (report.json keys to collect; dotted paths allowed; parameters, tokens
seen and wall time are always collected where the stage reports them), and `plot` ({kind: line | heatmap | bar, x, y,
value, group, logx}). Paths may use the recipe folder's placeholders ({recipe_dir}, {run_dir}). A point whose
report.json records the same resolved configuration is complete and skipped; one that records another configuration
stops the sweep with the changed keys named (--force re-runs it).
"""

import argparse
import itertools
import json
import os
import time

import yaml

from llm_recipes.config import RecipeError, fill_placeholders, load_yaml, recipe_context, run_plain
from llm_recipes.reporting.report import markdown_table
from llm_recipes.reporting.sweep import plot_sweep
from llm_recipes.runner import completed, find_file, launch, record_config, script_path

ALWAYS = ("parameters", "non_embedding_parameters", "tokens_seen")  # collected where a stage reports them


def plan_points(spec, points, base, common, out, where):
    """(name, labels, config) per point; a label naming a recipe key must say what the point really runs."""
    plan = []
    for point in points:
        name = point["name"]
        labels = point.get("vars") or {k: v for k, v in point.items() if k in (spec.get("grid") or {})}
        config = {**base, **common, **{k: v for k, v in point.items() if k not in ("name", "vars")},
                  "output_dir": os.path.join(out, name)}
        for k, v in labels.items():
            if k in config and config[k] != v:
                raise RecipeError(f"{where}: point '{name}' has vars.{k}={v!r} but runs {k}={config[k]!r}")
        plan.append((name, labels, config))
    return plan


def expand_points(spec):
    points = [dict(p) for p in spec.get("points", [])]
    grid = spec.get("grid") or {}
    for values in itertools.product(*grid.values()) if grid else []:
        point = dict(zip(grid.keys(), values))
        point["name"] = "_".join(f"{''.join(w[0] for w in k.split('_'))}{v}" for k, v in point.items())
        points.append(point)
    names = [p.get("name") for p in points]
    if not points or None in names or len(set(names)) != len(names):
        raise RecipeError("sweep: every point needs a unique name (grid points are named from their values)")
    return points


def get_path(report, dotted):
    value = report
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep")
    parser.add_argument("--output_dir")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--launcher", choices=["accelerate", "python"], default="accelerate")
    parser.add_argument("--only", help="comma-separated point names to run")
    parser.add_argument("--force", action="store_true", help="re-run points even if they completed")
    args = parser.parse_args(argv)

    folder = os.path.dirname(args.sweep) or "."
    context = recipe_context(folder)
    spec = fill_placeholders(load_yaml(args.sweep), context, args.sweep)
    base_file = os.path.join(folder, spec["base_config"])
    base = fill_placeholders(load_yaml(base_file), context, base_file)
    out = args.output_dir or spec["output_dir"]
    common = {**(spec.get("set") or {}), **{k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}}
    points = expand_points(spec)
    if args.only:
        points = [p for p in points if p["name"] in args.only.split(",")]
    script = script_path(spec["script"])
    accelerate_config = find_file(spec.get("accelerate_config", "configs/cpu.yaml"), folder)
    plan = plan_points(spec, points, base, common, out, args.sweep)
    rows, start = [], time.time()
    for i, (name, labels, config) in enumerate(plan):
        os.makedirs(config["output_dir"], exist_ok=True)
        config_path = os.path.join(out, f"{name}.yaml")
        with open(config_path, "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f, allow_unicode=True, sort_keys=False)
        report = completed(config["output_dir"], config, args.force, f"sweep point '{name}'", root=out)
        t0 = time.time()
        if report is None:
            print(f"\n=== point {i + 1}/{len(points)}: {name}", flush=True)
            code = launch(script, config_path, args.launcher, accelerate_config,
                          env={"LLM_RECIPE": f"{args.sweep} (point {name})"})
            if code != 0:
                raise RecipeError(f"sweep point '{name}' failed with exit code {code} (its message is above)")
            report = record_config(config["output_dir"], config, root=out)
        else:
            print(f"=== point {name}: complete, skipped")
        metrics = [*spec.get("metrics", []), *(k for k in ALWAYS if k in report and k not in spec.get("metrics", []))]
        row = {"name": name, **labels, **{m: get_path(report, m) for m in metrics},
               "wall_time_s": report.get("wall_time_s", round(time.time() - t0, 1))}
        rows.append(row)
    with open(os.path.join(out, "results.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
    headers = list(dict.fromkeys(["name", *(k for _, labels, _ in plan for k in labels), *(k for r in rows for k in r)]))
    table = markdown_table(headers, [[json.dumps(r.get(h), ensure_ascii=False, default=str)
                                      if isinstance(r.get(h), (list, dict)) else r.get(h, "-") for h in headers]
                                     for r in rows])
    extra = plot_sweep(os.path.join(out, "sweep.png"), rows, spec.get("plot")) if spec.get("plot") else ""
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write(f"# Sweep {args.sweep}\n\n{table}\n\n{extra}\n")
    print(f"\n## Sweep {args.sweep} ({len(rows)} points, {time.time() - start:.0f}s)\n\n{table}\n{extra}")
    return rows


if __name__ == "__main__":
    run_plain(main)
