"""Regenerate the research tables (docs/research.md, a recipe's README.md) from the study recipes' reports, so the
figures are the code's: the sweeps' sweep.json (research/sweep.py: per point the mean and 95 % interval over seeds of
the metrics the claims name, and the scaling-law fit where a sweep has one) and the arm comparisons of recipes whose
last stages run research/verdict.py (per arm the mean and interval over seeds); then every claim with its paired
difference, interval and computed verdict. Each table names the git commit that produced it.

    python research/research_tables.py --output docs/research.md          # every study sweep and verdict stage
    python research/research_tables.py recipes/arch-ablation/sweep.yaml --output README-sections/research.md
    python research/research_tables.py --only arms --recipe swallow-smollm2 --output recipes/swallow-smollm2/README.md

With --output, only the text between the markers `<!-- research-tables:begin -->` / `<!-- research-tables:end -->`
(sweeps) and `<!-- research-arms:begin -->` / `<!-- research-arms:end -->` (arm comparisons) is replaced; the rest of
the file is kept. `--only sweeps|arms` regenerates one block (the other keeps its tables and their commits).
"""

import argparse
import glob
import json
import os

from llm_recipes.config import fill_placeholders, load_yaml, recipe_context, run_plain
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import markdown_table
from llm_recipes.reporting.stats import format_interval, t_interval
from llm_recipes.reporting.sweep import interval_cell
from llm_recipes.scripts.run_recipe import variant_run_dir

BEGIN, END = "<!-- research-tables:begin -->", "<!-- research-tables:end -->"  # sweeps
ARMS_BEGIN, ARMS_END = "<!-- research-arms:begin -->", "<!-- research-arms:end -->"  # verdict.py comparisons


def sweep_files(root="."):
    """Study sweeps: sweep files whose spec has claims."""
    files = sorted((os.path.normpath(f) for f in glob.glob(os.path.join(root, "recipes", "*", "sweep*.yaml"))),
                   key=lambda f: (os.path.dirname(f), os.path.basename(f) != "sweep.yaml", f))  # sweep.yaml first
    return [f for f in files if (load_yaml(f) or {}).get("claims") or (load_yaml(f) or {}).get("claim")]


def verdict_stages(root="."):
    """(recipe, config path, output_dir) of every recipe stage that runs research/verdict.py (an arms x seeds study),
    each followed by the same for every variant its recipe.yaml names (`variants:`; recipe "<name> --variant
    <variant>", in the variant's run_dir with its keys for that stage)."""
    found = []
    for path in sorted(glob.glob(os.path.join(root, "recipes", "*", "recipe.yaml"))):
        folder = os.path.dirname(os.path.normpath(path))
        recipe = load_yaml(path) or {}
        runs = [(os.path.basename(folder), None, {})] + [
            (f"{os.path.basename(folder)} --variant {name}", variant_run_dir(folder, name), keys or {})
            for name, keys in (recipe.get("variants") or {}).items()]
        for label, run_dir, keys in runs:
            for stage in recipe.get("stages") or []:
                if os.path.basename(str(stage.get("script", ""))) != "verdict.py":
                    continue
                config_path = os.path.join(folder, stage["config"])
                config = {**load_yaml(config_path), **(stage.get("set") or {}),
                          **{k.partition(".")[2]: v for k, v in keys.items() if k.partition(".")[0] == stage["name"]}}
                config = fill_placeholders(config, recipe_context(folder, run_dir), config_path)
                found.append((label, config_path, config["output_dir"]))
    return found


def verdict_section(recipe, config_path, report):
    """Per arm mean [95 % t interval] for each metric of a verdict.py comparison."""
    values, references = report["values"], report.get("references") or {}
    metrics, arms = list(values), list(dict.fromkeys(a for by_arm in values.values() for a in by_arm))
    columns = [(m, None) for m in metrics] + [(m, "ref") for m in metrics if m in references]
    rows = [[arm, *((format_interval(*t_interval(values[m][arm])) if arm in values[m] else "-") if kind is None
                    else references[m].get(arm, "-") for m, kind in columns)] for arm in arms]
    headers = ["arm", *(m if kind is None else f"{m}: {references[m]['label']}" for m, kind in columns)]
    where = os.path.normpath(config_path)
    if not where.startswith(os.path.join("recipes", recipe) + os.sep):  # a recipe that reuses another's stage file
        where = f"recipes/{recipe} ({where})"
    head = (f"#### `{where}` (commit `{report.get('commit') or 'unknown'}`; {report.get('seeds', '?')} seeds "
            f"per arm; cells: mean [95 % t interval over seeds]; wall time of the comparison stage only)")
    return f"{head}\n\n{markdown_table(headers, rows)}\n"


def output_dir(sweep_file):
    spec = fill_placeholders(load_yaml(sweep_file), recipe_context(os.path.dirname(sweep_file)), sweep_file)
    return spec["output_dir"], spec


def claim_row(recipe, claim, commit):
    diff = "-" if claim["mean_difference"] is None else \
        format_interval(claim["mean_difference"], claim["low"], claim["high"])
    margin = f" (margin {claim['margin']:.3g})" if claim.get("margin") else ""
    return [recipe, claim["name"], claim.get("source") or "-", f"{claim['better']} vs {claim['worse']}{margin}",
            claim["metric"], diff, claim["seeds"], f"**{claim['verdict']}**", commit or "-"]


def sweep_section(sweep_file, report):
    """A table of per-point means [95 % intervals] for the metrics the claims name (and the plotted one)."""
    metrics = list(dict.fromkeys([*(c["metric"] for c in report["claims"]),
                                  *([report["plot_metric"]] if report.get("plot_metric") else [])]))
    labels = report.get("label_keys", [])
    headers = ["point", *labels, "seeds", *metrics]
    rows = [[p["name"], *(p.get(k, "-") for k in labels), p["seeds"], *(interval_cell(p, m) for m in metrics)]
            for p in report["points"]]
    commit = report.get("commit") or "unknown"
    head = (f"#### `{sweep_file}` (commit `{commit}`; seeds {', '.join(map(str, report['seeds']))}; cells: mean "
            f"[95 % t interval over seeds]; training time, sum of runs: {report.get('runs_wall_time_s', '-')} s)")
    return f"{head}\n\n{markdown_table(headers, rows)}\n"


def fit_section(out):
    path = os.path.join(out, "scaling_law.md")
    if not os.path.isfile(path):
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read().replace("## Scaling-law fit", "#### Scaling-law fit", 1) + "\n"


INTRO = ("A verdict is computed from the per-seed differences paired by seed: **reproduced** when the 95 % t interval "
         "of the mean difference excludes 0 in the claimed direction, **contradicted** when it excludes 0 the other "
         "way, **inconclusive** otherwise; differences are signed so that > 0 supports the claim. A claim with a "
         "margin m (\"within 5 %\": non-inferiority) is reproduced when the interval lies above -m, contradicted "
         "when it lies below -m.")
HEADERS = ["recipe", "claim", "source", "arms", "metric", "paired difference [95 % CI]", "seeds", "verdict", "commit"]


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def render_sweeps(files):
    sections, claims, missing = [], [], []
    for sweep_file in files:
        out, _ = output_dir(sweep_file)
        path = os.path.join(out, "sweep.json")
        if not os.path.isfile(path):
            missing.append(f"`{sweep_file}` (no {path}: run `python research/sweep.py {sweep_file}`)")
            continue
        report = read_json(path)
        recipe = os.path.basename(os.path.dirname(sweep_file)) + ("" if os.path.basename(sweep_file) == "sweep.yaml"
                                                                   else f" ({os.path.basename(sweep_file)})")
        claims += [claim_row(recipe, c, report.get("commit")) for c in report["claims"]]
        sections.append(sweep_section(sweep_file, report) + ("\n" + fit_section(out) if fit_section(out) else ""))
    table = markdown_table(HEADERS, claims) if claims else "(no sweep has been run)"
    text = (f"Generated by `python research/research_tables.py` from the sweeps' `sweep.json` (do not edit by hand). "
            f"{INTRO}\n\n{table}\n\n" + "\n".join(sections))
    return text + ("\nNot run yet: " + "; ".join(missing) + "\n" if missing else "")


def render_arms(stages):
    """The arm comparisons of recipes that end in a research/verdict.py stage (training arms x seeds)."""
    sections, claims, missing = [], [], []
    for recipe, config_path, out in stages:
        path = os.path.join(out, "report.json")
        if not os.path.isfile(path):
            missing.append(f"`{config_path}` (no {path}: run `python scripts/run_recipe.py recipes/{recipe}`)")
            continue
        report = read_json(path)
        claims += [claim_row(recipe, {**c, "name": c.get("name") or f"{c['better']} beats {c['worse']}"},
                             report.get("commit")) for c in report["verdicts"]]
        sections.append(verdict_section(recipe, config_path, report))
    table = markdown_table(HEADERS, claims) if claims else "(no comparison has been run)"
    text = (f"Generated by `python research/research_tables.py` from the comparison stages' `report.json` "
            f"(research/verdict.py; do not edit by hand). {INTRO}\n\n{table}\n\n" + "\n".join(sections))
    return text + ("\nNot run yet: " + "; ".join(missing) + "\n" if missing else "")


def write(path, blocks):
    """Replace the text between each block's markers; a new file gets every block; an existing file must hold the
    markers of every block written."""
    current = None
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            current = f.read()
    if current is None:
        current = "\n".join(f"{begin}\n{end}" for begin, end, _ in blocks) + "\n"
    for begin, end, text in blocks:
        if begin not in current or end not in current:
            raise RecipeError(f"{path}: no {begin} ... {end} markers to write the table between")
        current = current[:current.index(begin)] + f"{begin}\n{text.rstrip()}\n{end}" + \
            current[current.index(end) + len(end):]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(current)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweeps", nargs="*", help="sweep files (default: every recipes/*/sweep*.yaml with claims)")
    parser.add_argument("--only", choices=["sweeps", "arms"], help="regenerate one block only (e.g. after running "
                        "one kind of study); default: both")
    parser.add_argument("--output", help="markdown file to write (default: print)")
    parser.add_argument("--recipe", help="only this recipe's comparison (e.g. into its own README.md); a variant's: "
                        "'NAME --variant VARIANT'")
    args = parser.parse_args(argv)
    blocks = []
    if args.only != "arms":
        blocks.append((BEGIN, END, render_sweeps(args.sweeps or sweep_files())))
    if args.only != "sweeps" and not args.sweeps:
        stages = [s for s in verdict_stages() if args.recipe in (None, s[0])]
        blocks.append((ARMS_BEGIN, ARMS_END, render_arms(stages)))
    text = "\n\n".join(block for _, _, block in blocks)
    if args.output:
        write(args.output, blocks)
        print(f"wrote {args.output}")
    else:
        print(text)
    return text


if __name__ == "__main__":
    run_plain(main)
