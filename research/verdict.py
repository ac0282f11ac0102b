"""Verdicts from finished runs: collect a metric per arm and seed from stage reports, give per-arm means with t
intervals, and decide each claim from the seeds paired by position (llm_recipes.reporting.stats.verdict).

    python research/verdict.py --config recipes/rho1/verdict.yaml

`arms`: {arm: [run output_dir per seed, ...]} (seed i of every arm at position i), or {arm: "<dir>-s{seed}"} with
`seeds: [1, 2, 3]` for a stage recipe.yaml runs once per seed; an arm with one run (a base model, say) is the same
baseline for every seed of the other arm. `metrics`: [{name, key, report, higher_is_better}]: `key` is a dotted path
in a report.json; `report` is the folder holding it, `{run}` (default) for the run itself or another stage's folder
where `{name}` stands for the run folder's name (an evaluation stage's scores.{name}.<task>.score). A key that holds a
list (per-document figures of one run) pairs its items instead of seeds. Optional `reference: {arm: number}` with
`reference_label` puts published figures (a paper's, say) in a column beside ours, for reading only: verdicts use our
runs. `claims`: [{metric, better, worse, margin}]; `margin` (a fraction of the `worse` arm's mean) makes the claim
non-inferiority: "better is at most that much worse". Writes report.md, comparison.png and report.json.
"""

import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import parse, run, with_seeds
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import markdown_table, read_report, write_report
from llm_recipes.reporting.stats import format_interval, t_interval, verdict
from llm_recipes.runner import git_commit


@dataclass
class VerdictArguments:
    arms: dict = field(metadata={"help": "{arm: [run output_dir of seed 1, seed 2, ...]}"})
    metrics: list[dict] = field(metadata={"help": "[{name, key (dotted), report ('{run}' or a folder), "
                                                  "higher_is_better, arms (default all), reference: {arm: "
                                                  "published figure}, reference_label}]"})
    claims: list[dict] = field(metadata={"help": "[{metric, better: arm, worse: arm, name, source, margin}] (name "
                                                 "and source label the claim in the README's research table)"})
    output_dir: str
    seeds: list[int] | None = field(default=None, metadata={"help": "fill {seed} in arms' run paths"})

    def __post_init__(self):
        self.arms = {arm: with_seeds(runs, self.seeds or []) if self.seeds else runs for arm, runs in self.arms.items()}
        self.arms = {arm: [runs] if isinstance(runs, str) else runs for arm, runs in self.arms.items()}


ARGUMENTS = (VerdictArguments,)


def get_path(report, dotted):
    value = report
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def collect(args):
    """{metric: {arm: [value per seed]}} read from the reports; a missing report or key is an error naming it."""
    values = {}
    for metric in args.metrics:
        for arm, runs in args.arms.items():
            if metric.get("arms") and arm not in metric["arms"]:  # a measure only some arms have
                continue
            for run_dir in runs:
                name = os.path.basename(os.path.normpath(run_dir))
                folder = metric.get("report", "{run}").replace("{run}", run_dir)
                report = read_report(folder)
                value = get_path(report or {}, metric["key"].replace("{name}", name))
                numbers = value if isinstance(value, list) and len(runs) == 1 else [value]
                if not numbers or not all(isinstance(v, (int, float)) for v in numbers):
                    raise RecipeError(f"metrics '{metric['name']}': no number at {metric['key']!r} (run {name}) in "
                                      f"{folder}/report.json" + ("" if report else " (no report)"))
                values.setdefault(metric["name"], {}).setdefault(arm, []).extend(float(v) for v in numbers)
    return values


def plot(path, values, arms, references=None):
    from llm_recipes.reporting.plots import subplots

    width = max(4, 0.8 * len(arms))
    fig, axes = subplots(1, len(values), figsize=(width * len(values), 3.8), squeeze=False)
    for ax, (metric, by_arm) in zip(axes[0], values.items()):
        label, reference = (references or {}).get(metric, (None, {}))
        first = next((a for a in arms if a in reference), None)
        for i, arm in enumerate(a for a in arms if a in by_arm):
            mean, low, high = t_interval(by_arm[arm])
            ax.bar(i, mean, yerr=[[mean - low], [high - mean]], capsize=4, color="#4c72b0", alpha=0.7)
            ax.scatter([i] * len(by_arm[arm]), by_arm[arm], color="black", s=12, zorder=3)
            if arm in reference:
                ax.scatter([i], [reference[arm]], color="#c44e52", marker="x", s=40, zorder=4,
                           label=label if arm == first else None)
        many = len(arms) > 3
        shown = [a for a in arms if a in by_arm]
        ax.set_xticks(range(len(shown)), shown, rotation=30 if many else 0, ha="right" if many else "center")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} (95% t interval, dots: seeds)", fontsize=9)
        if reference:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def paired(a, b):
    """Two arms' values paired by seed (or item); a single value is the same baseline for every seed of the other."""
    if len(a) == 1 and len(b) > 1:
        a = a * len(b)
    if len(b) == 1 and len(a) > 1:
        b = b * len(a)
    if len(a) != len(b):
        raise RecipeError(f"claims: arms to compare need the same number of seeds (or one run); got {len(a)} and "
                          f"{len(b)}")
    return a, b


def main(args: VerdictArguments):
    start = time.time()
    counts = {len(runs) for runs in args.arms.values()}
    if not args.arms or len(counts - {1}) > 1:
        raise RecipeError(f"arms: every arm needs the same number of seeded runs (or one run); got {args.arms}")
    by_name = {m["name"]: m for m in args.metrics}
    for claim in args.claims:
        if claim.get("metric") not in by_name or claim.get("better") not in args.arms or \
                claim.get("worse") not in args.arms:
            raise RecipeError(f"claims: {claim} must name a metric ({list(by_name)}) and two arms ({list(args.arms)})")
        measured = by_name[claim["metric"]].get("arms") or list(args.arms)
        if claim["better"] not in measured or claim["worse"] not in measured:
            raise RecipeError(f"claims: {claim}: metric '{claim['metric']}' is measured for arms {measured} only")
    for metric in args.metrics:
        unknown = set(metric.get("reference") or {}) - set(args.arms)
        if unknown:
            raise RecipeError(f"metrics '{metric['name']}': reference names unknown arm(s) {sorted(unknown)}")
    values = collect(args)
    references = [m for m in args.metrics if m.get("reference")]
    label = " / ".join(dict.fromkeys(m.get("reference_label", "reference") for m in references))
    published = {m["name"]: (m.get("reference_label", "reference"), m["reference"]) for m in references}

    def reference(metric, arm):
        value = (by_name[metric].get("reference") or {}).get(arm)
        return "-" if value is None else f"{value:.4g}"

    rows = [[metric, arm, format_interval(*t_interval(v)),
             ", ".join(f"{x:.4g}" for x in v) if len(v) <= 10 else f"{len(v)} documents"]
            + ([reference(metric, arm)] if references else [])
            for metric, by_arm in values.items() for arm, v in by_arm.items()]
    verdicts = []
    for claim in args.claims:
        metric = by_name[claim["metric"]]
        better, worse = paired(values[metric["name"]][claim["better"]], values[metric["name"]][claim["worse"]])
        margin = claim.get("margin", 0.0) * abs(sum(worse) / len(worse))
        result = verdict(better, worse, higher_is_better=metric.get("higher_is_better", True), margin=margin)
        verdicts.append({**claim, **result})
    table = markdown_table(["metric", "arm", "mean [95% t interval]", "per seed"] + ([label] if references else []),
                           rows)
    claims = markdown_table(["claim", "metric", "mean difference [95% interval]", "seeds", "verdict"], [
        [f"{v['better']} {'within ' + format(v['margin'], '.3g') + ' of' if v.get('margin') else 'beats'} "
         f"{v['worse']}", v["metric"], format_interval(v["mean_difference"], v["low"], v["high"]),
         v["seeds"], f"**{v['verdict']}**"] for v in verdicts])
    os.makedirs(args.output_dir, exist_ok=True)
    plot(os.path.join(args.output_dir, "comparison.png"), values, list(args.arms), published)
    text = f"{table}\n\n{claims}\n\n(difference: better - worse, sign flipped where lower is better)\n"
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(f"# Comparison over {max(counts)} seeds\n\n{text}")
    print(text)
    return write_report(args.output_dir, "verdict", {
        "values": values, "verdicts": verdicts, "commit": git_commit(), "seeds": max(counts),
        "references": {m["name"]: {"label": m.get("reference_label", "reference"), **m["reference"]}
                       for m in references}},
                        wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
