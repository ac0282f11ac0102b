"""Run a sweep: every point of a grid (or an explicit list) is run once per seed, each run its own process (`accelerate
launch` or plain python) with its own resolved config; per-seed results go to results.jsonl, per-point means with 95 %
intervals to a table and a plot with error bars, and each claim of the sweep file gets a verdict computed from the
paired seeds.

    python research/sweep.py recipes/dpo-data-efficiency/sweep.yaml [--output_dir DIR] [--seeds 0,1,2] [--set key=value]

Sweep file keys: `script`, `base_config` (a stage recipe, relative to the sweep file), `output_dir`,
`accelerate_config`, `launcher` (accelerate | python: the default for --launcher), `grid` ({recipe key: [values]},
Cartesian product) and/or `points` ([{name, vars: {label: value}, script, base_config, <recipe key>: value}]: `vars`
only label the point in the results; `script` / `base_config` let one point run another stage, e.g. KTO beside DPO),
`set` (overrides for every point), `seeds` ([...]: every point runs once per seed, the recipe's `seed` key set, in
`<output_dir>/<point>/seed<seed>`), `metrics` (report.json keys to collect; dotted paths allowed; parameters, tokens
seen and wall time are always collected where the stage reports them), `plot` ({kind: line | heatmap | bar, x, y,
value, group, logx}), `claims` ([{name, source, better, worse, metric, higher_is_better}]: better / worse name a
point or a mapping of its labels; the verdict is stats.verdict over the per-seed differences, paired by seed) and
`scaling_law` ({n_key, d_key, loss_key, bootstrap, budget}: fit research/scaling_law.py to the per-seed rows).
Paths may use the recipe folder's placeholders ({recipe_dir}, {run_dir}). A run whose report.json records the same
resolved configuration is complete and skipped; one that records another configuration stops the sweep with the
changed keys named (--force re-runs it). The sweep writes results.jsonl, summary.jsonl, sweep.json (points, claims,
verdicts, the git commit), report.md and sweep.png into its output_dir.
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import time

import yaml

from llm_recipes.config import fill_placeholders, load_yaml, recipe_context, run_plain
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import markdown_table, write_json_atomic
from llm_recipes.reporting.sweep import (
    claim_line,
    evaluate_claim,
    interval_cell,
    parse_claims,
    plot_sweep,
    summarize_points,
)
from llm_recipes.runner import completed, find_file, git_commit, launch, record_config, script_path

ALWAYS = ("parameters", "non_embedding_parameters", "tokens_seen")  # collected where a stage reports them
POINT_KEYS = ("name", "vars", "script", "base_config")  # a point's keys that are not recipe keys


def plan_points(spec, points, base, common, out, where, folder=".", context=None):
    """(name, labels, config, script) per point; a label naming a recipe key must say what the point really runs."""
    plan = []
    for point in points:
        name = point["name"]
        labels = point.get("vars") or {k: v for k, v in point.items() if k in (spec.get("grid") or {})}
        point_base = base
        if point.get("base_config"):
            path = os.path.join(folder, point["base_config"])
            point_base = fill_placeholders(load_yaml(path), context or {}, path)
        config = {**point_base, **common, **{k: v for k, v in point.items() if k not in POINT_KEYS},
                  "output_dir": os.path.join(out, name)}
        for k, v in labels.items():
            if k in config and config[k] != v:
                raise RecipeError(f"{where}: point '{name}' has vars.{k}={v!r} but runs {k}={config[k]!r}")
        plan.append((name, labels, config, point.get("script", spec.get("script"))))
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


def runs_of(plan, seeds):
    """(name, labels, seed, config, script) per point x seed; with seeds, each run in <point>/seed<seed> with the
    recipe's `seed` set."""
    for name, labels, config, script in plan:
        for seed in seeds:
            if seed is None:
                yield name, labels, None, config, script
            else:
                yield name, labels, seed, {**config, "seed": seed,
                                           "output_dir": os.path.join(config["output_dir"], f"seed{seed}")}, script


def get_path(report, dotted):
    value = report
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def fit_section(spec, out):
    """research/scaling_law.py on the per-seed rows, as the sweep file's `scaling_law:` asks (its own process, as the
    stage scripts run)."""
    fit = spec["scaling_law"]
    argv = [sys.executable, script_path("scaling_law"), os.path.join(out, "results.jsonl")]
    for key in ("n_key", "d_key", "loss_key", "bootstrap", "grid"):
        if key in fit:
            argv += [f"--{key}", str(fit[key])]
    if fit.get("budget"):
        argv += ["--budget", *map(str, fit["budget"])]
    if subprocess.call(argv) != 0:
        raise RecipeError(f"scaling_law: the fit on {argv[2]} failed (its message is above)")
    with open(os.path.join(out, "scaling_law.md"), encoding="utf-8") as f:
        return f.read()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep")
    parser.add_argument("--output_dir")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--launcher", choices=["accelerate", "python"], help="default: the sweep file's, else accelerate")
    parser.add_argument("--only", help="comma-separated point names to run")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the sweep file's `seeds`)")
    parser.add_argument("--force", action="store_true", help="re-run points even if they completed")
    args = parser.parse_args(argv)

    folder = os.path.dirname(args.sweep) or "."
    context = recipe_context(folder)
    spec = fill_placeholders(load_yaml(args.sweep), context, args.sweep)
    base_file = os.path.join(folder, spec["base_config"])
    base = fill_placeholders(load_yaml(base_file), context, base_file)
    out = args.output_dir or spec["output_dir"]
    common = {**(spec.get("set") or {}), **{k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}}
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else spec.get("seeds") or [None]
    if len(set(seeds)) != len(seeds):
        raise RecipeError(f"{args.sweep}: seeds {seeds} repeat a seed")
    launcher = args.launcher or spec.get("launcher", "accelerate")
    points = expand_points(spec)
    all_points = [(p["name"], p.get("vars") or {k: v for k, v in p.items() if k in (spec.get("grid") or {})})
                  for p in points]
    claims = parse_claims(spec, all_points, args.sweep)  # checked before any run
    if args.only:
        points = [p for p in points if p["name"] in args.only.split(",")]
    accelerate_config = find_file(spec.get("accelerate_config", "configs/cpu.yaml"), folder)
    plan = plan_points(spec, points, base, common, out, args.sweep, folder, context)
    runs = list(runs_of(plan, seeds))
    rows, start = [], time.time()
    for i, (name, labels, seed, config, script) in enumerate(runs):
        run_name = name if seed is None else f"{name} seed {seed}"
        os.makedirs(config["output_dir"], exist_ok=True)
        config_path = os.path.join(out, f"{name}.yaml" if seed is None else f"{name}-seed{seed}.yaml")
        with open(config_path, "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f, allow_unicode=True, sort_keys=False)
        report = completed(config["output_dir"], config, args.force, f"sweep point '{run_name}'", root=out)
        t0 = time.time()
        if report is None:
            print(f"\n=== run {i + 1}/{len(runs)}: {run_name}", flush=True)
            code = launch(script_path(script, folder), config_path, launcher, accelerate_config,
                          env={"LLM_RECIPE": f"{args.sweep} (point {run_name})"})
            if code != 0:
                raise RecipeError(f"sweep point '{run_name}' failed with exit code {code} (its message is above)")
            report = record_config(config["output_dir"], config, root=out)
        else:
            print(f"=== run {run_name}: complete, skipped")
        metrics = [*spec.get("metrics", []), *(k for k in ALWAYS if k in report and k not in spec.get("metrics", []))]
        rows.append({"name": name, "seed": seed, **labels, **{m: get_path(report, m) for m in metrics},
                     "wall_time_s": report.get("wall_time_s", round(time.time() - t0, 1))})
    with open(os.path.join(out, "results.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)

    label_keys = list(dict.fromkeys(k for _, labels, _, _ in plan for k in labels))
    metric_keys = list(dict.fromkeys(k for r in rows for k in r if k not in ("name", "seed", *label_keys)))
    summary = summarize_points(rows, [(n, labels) for n, labels, _, _ in plan], metric_keys)
    with open(os.path.join(out, "summary.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in summary)
    headers = ["name", *label_keys, "seeds", *metric_keys]
    table = markdown_table(headers, [[json.dumps(r.get(h), ensure_ascii=False, default=str)
                                      if isinstance(r.get(h), (list, dict)) else interval_cell(r, h) for h in headers]
                                     for r in summary])
    extra = plot_sweep(os.path.join(out, "sweep.png"), summary, spec["plot"]) if spec.get("plot") else ""
    fit = fit_section(spec, out) if spec.get("scaling_law") else ""
    results = [evaluate_claim(c, rows, seeds) for c in claims]
    verdicts = "\n".join(f"- {claim_line(r)}" for r in results)
    commit = git_commit()
    seeds_note = "one run per point" if seeds == [None] else \
        f"seeds {', '.join(map(str, seeds))} per point; cells: mean [95 % t interval over seeds]"
    report_md = (f"# Sweep {args.sweep}\n\ncommit {commit}; {seeds_note}; per-seed values in results.jsonl\n\n{table}"
                 f"\n\n{extra}\n" + (f"\n{fit}\n" if fit else "") +
                 (f"\n## Verdicts (computed from paired seeds)\n\n{verdicts}\n" if results else ""))
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write(report_md)
    write_json_atomic(os.path.join(out, "sweep.json"), {
        "sweep": args.sweep, "commit": commit, "seeds": seeds, "label_keys": label_keys, "metric_keys": metric_keys,
        "plot_metric": (spec.get("plot") or {}).get("value" if (spec.get("plot") or {}).get("kind") == "heatmap"
                                                    else "y"),
        "points": summary, "claims": results, "wall_time_s": round(time.time() - start, 1),
        "runs_wall_time_s": round(sum(r["wall_time_s"] or 0 for r in rows), 1), "plot_note": extra})
    print(f"\n## Sweep {args.sweep} ({len(runs)} runs, {time.time() - start:.0f}s)\n\n{table}\n{extra}\n{fit}\n"
          + (f"\n## Verdicts (computed from paired seeds)\n\n{verdicts}" if results else ""))
    return rows


if __name__ == "__main__":
    run_plain(main)
