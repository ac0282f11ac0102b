"""SliCK stage (Gekhman et al. 2024, arXiv 2405.05904): what does a model know? And, over fine-tuning checkpoints,
how fast does it fit Known vs Unknown facts and what happens to held-out accuracy?

    python scripts/slick.py --config recipes/slick/categorise.yaml      # categories of a model's facts
    python scripts/slick.py --config recipes/slick/track_u50.yaml       # accuracy per epoch of fine-tuning runs

Categorise (`model_name_or_path`): every fact of `dataset_name` (JSONL: question, answer [, relation, truth keys]) is
answered greedily from `n_prompts` few-shot prompts and sampled `n_samples` times per prompt at `temperature`; the
category follows the paper (llm_recipes.evaluation.slick). Where the data knows what the model saw (`truth_key`,
`truth_expected: {group: Known | Unknown}`) the report gives the agreement. `mixtures` writes the paper's fine-tuning
sets: `mixture_size` facts of the fine-tuning split with a controlled Unknown share, as prompt/completion JSONL for
scripts/sft.py, and `heldout.jsonl` (the held-out split with its categories).

Track (`runs`; `["<dir>-s{seed}"]` with `seeds: [1, 2, 3]` for a stage recipe.yaml runs once per seed): every
checkpoint-* of each SFT run answers each eval set zero-shot (greedy, exact match); writes
<output_dir>/<run>/<eval set>/report.json (accuracy per epoch, final, best and mean over the checkpoints; `base_model`
adds epoch 0) for research/verdict.py, a table and
curves.png. Writes report.json last (report.md, PNG before it).
"""

import json
import os
import time
from dataclasses import dataclass, field

from llm_recipes.config import parse, run, with_seeds
from llm_recipes.data import load_records
from llm_recipes.errors import RecipeError
from llm_recipes.evaluation import slick
from llm_recipes.reporting.report import clear_report, markdown_table, write_json_atomic, write_report
from llm_recipes.training.common import all_checkpoints


@dataclass
class SlickArguments:
    output_dir: str
    dataset_name: str | None = field(default=None, metadata={"help": "facts JSONL: question, answer [, relation, ...]"})
    answer_key: str = field(default="answer", metadata={"help": "the answer column (a string or a list of aliases)"})
    model_name_or_path: str | None = field(default=None, metadata={"help": "the model to categorise"})
    runs: list[str] | None = field(default=None, metadata={"help": "track mode: SFT output dirs (checkpoint-*); "
                                                                "'<dir>-s{seed}' with seeds: one per seed"})
    eval_sets: list[dict] | None = field(default=None, metadata={"help": "track mode: [{name, path, where}]"})
    base_model: str | None = field(default=None, metadata={"help": "track mode: the runs' start, shown as epoch 0"})
    fewshot_where: dict | None = field(default=None, metadata={"help": "exemplar pool: the facts matching these keys"})
    n_prompts: int = field(default=4, metadata={"help": "N_ex: few-shot prompts per fact (greedy answers)"})
    k_shot: int = 4
    n_samples: int = field(default=4, metadata={"help": "sampled answers per prompt at temperature"})
    temperature: float = 0.5
    template: str = "Q: {question}\nA:"
    answer_template: str = " {answer}"
    separator: str = "\n"
    stop: str = "\n"
    answer_suffixes: list[str] = field(default_factory=list, metadata={"help": "removed before exact match"})
    truth_key: str | None = None
    truth_expected: dict | None = field(default=None, metadata={"help": "{truth group: Known | Unknown}"})
    mixtures: list[dict] | None = field(default=None, metadata={"help": "[{name, unknown_share}]"})
    mixture_size: int = 40
    mixture_where: dict | None = field(default=None, metadata={"help": "fine-tuning split, e.g. {split: finetune}"})
    heldout_where: dict | None = field(default=None, metadata={"help": "held-out split, e.g. {split: heldout}"})
    max_new_tokens: int = 8
    batch_size: int = 64
    seed: int = 0
    dry_run: bool = False
    seeds: list[int] | None = field(default=None, metadata={"help": "track mode: fill {seed} in runs (one per seed)"})

    def __post_init__(self):  # runs: ["<dir>-s{seed}"] with seeds -> one run dir per seed, as in verdict.py
        self.runs = with_seeds(self.runs, self.seeds) if self.seeds and self.runs else self.runs


ARGUMENTS = (SlickArguments,)


def select(rows, where):
    return [r for r in rows if all(r.get(k) == v for k, v in (where or {}).items())]


def model_fn(path, args):
    from transformers import set_seed

    from llm_recipes.generation import load
    from llm_recipes.training.common import require_model_dir

    path = require_model_dir(path)
    set_seed(args.seed)
    return slick.hf_generate_fn(*load(path), args.max_new_tokens, args.batch_size)


def plot_categories(path, rows, truth_key):
    from llm_recipes.reporting.plots import subplots

    groups = ["all"] + (sorted({str(r.get(truth_key)) for r in rows}) if truth_key else [])
    fig, ax = subplots(figsize=(1.6 * len(groups) + 2, 3.5))
    bottom = [0.0] * len(groups)
    for cat, color in zip(slick.CATEGORIES, ("#2a9d8f", "#8ab17d", "#e9c46a", "#e76f51")):
        share = [slick.shares([r for r in rows if g == "all" or str(r.get(truth_key)) == g])[cat] for g in groups]
        ax.bar(groups, share, bottom=bottom, color=color, label=cat)
        bottom = [b + s for b, s in zip(bottom, share)]
    ax.set_ylabel("share of facts")
    ax.set_title(f"SliCK categories{' by ' + truth_key if truth_key else ''}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def categorise(args):
    facts = [dict(r, answer=r[args.answer_key])
             for r in load_records(args.dataset_name, required_keys=["question", args.answer_key])]
    pool = select(facts, args.fewshot_where)
    rows = slick.categorise(facts, pool, model_fn(args.model_name_or_path, args), args.n_prompts, args.k_shot,
                            args.n_samples, args.temperature, args.seed, args.template, args.answer_template,
                            args.separator, args.stop, args.answer_suffixes)
    with open(os.path.join(args.output_dir, "categories.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    metrics = {"facts": len(rows), "shares": slick.shares(rows), "settings": {
        k: getattr(args, k) for k in ("n_prompts", "k_shot", "n_samples", "temperature", "template")}}
    text = "## Category shares\n\n" + markdown_table(["category", "share", "facts"], [
        [c, s, round(s * len(rows))] for c, s in metrics["shares"].items()])
    if args.truth_key:
        metrics["agreement"] = slick.agreement(rows, args.truth_key, args.truth_expected or {})
        text += f"\n\n## Against what the model saw ({args.truth_key})\n\n" + markdown_table(
            ["group", "facts", *slick.CATEGORIES, "distinct answers (mean)", "expected", "agreement"],
            [[g, e["n"], *(e[c] for c in slick.CATEGORIES), e["mean_distinct_answers"], e.get("expected", "-"),
              e.get("agreement", "-")]
             for g, e in metrics["agreement"]["groups"].items()]) + \
            f"\n\nAgreement over facts with an expectation: {metrics['agreement']['overall']}"
    for mix in args.mixtures or []:
        chosen = slick.mixture(select(rows, args.mixture_where), args.mixture_size, mix["unknown_share"], args.seed)
        with open(os.path.join(args.output_dir, f"{mix['name']}.jsonl"), "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"prompt": slick.render(r["question"], None, args.template),
                                     "completion": args.answer_template.format(answer=slick.first(r["answer"])),
                                     **r}, ensure_ascii=False) + "\n" for r in chosen)
        metrics.setdefault("mixtures", {})[mix["name"]] = {
            "unknown_share": mix["unknown_share"], "size": len(chosen),
            "unknown": sum(r["known"] == slick.UNKNOWN for r in chosen)}
    if args.heldout_where:
        heldout = select(rows, args.heldout_where)
        with open(os.path.join(args.output_dir, "heldout.jsonl"), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in heldout)
        metrics["heldout"] = {"facts": len(heldout), "shares": slick.shares(heldout)}
    plot_categories(os.path.join(args.output_dir, "categories.png"), rows, args.truth_key)
    return metrics, f"# SliCK categories of {args.model_name_or_path}\n\n{text}\n"


def epoch_of(checkpoint):
    with open(os.path.join(checkpoint, "trainer_state.json"), encoding="utf-8") as f:
        return round(json.load(f)["epoch"], 2)


def track(args):
    sets = {e["name"]: select([dict(r) for r in load_records(e["path"], required_keys=["question", "answer"])],
                              e.get("where")) for e in args.eval_sets or []}
    if not sets or not all(sets.values()):
        raise RecipeError(f"eval_sets: each needs a name, a path and at least one matching record; got {args.eval_sets}")

    def accuracy(path):
        fn = model_fn(path, args)
        return {s: sum(slick.greedy_accuracy(records, fn, args.template, args.stop, args.answer_suffixes)) /
                len(records) for s, records in sets.items()}

    base = accuracy(args.base_model) if args.base_model else None
    curves = {}
    for run_dir in args.runs:
        name = os.path.basename(os.path.normpath(run_dir))
        epochs, acc = ([0.0], {s: [base[s]] for s in sets}) if base else ([], {s: [] for s in sets})
        for _, checkpoint in all_checkpoints(run_dir, "set save_strategy: epoch in the SFT recipe"):
            epochs.append(epoch_of(checkpoint))
            for s, value in accuracy(checkpoint).items():
                acc[s].append(value)
        for s, values in acc.items():
            curves[(name, s)] = (epochs, values)
            trained = values[1:] if base else values  # best and mean over the fine-tuning checkpoints
            write_report(os.path.join(args.output_dir, name, s), "slick_track", {
                "run": run_dir, "eval_set": s, "examples": len(sets[s]), "epochs": epochs, "accuracy": values,
                "accuracy_final": values[-1], "accuracy_best": max(trained), "accuracy_mean": sum(trained) / len(trained),
                "accuracy_start": base[s] if base else None})
    plot_curves(os.path.join(args.output_dir, "curves.png"), curves, list(sets))
    rows = [[run_name, s, len(sets[s]), " ".join(f"{v:.2f}" for v in values)]
            for (run_name, s), (_, values) in curves.items()]
    epochs = next(iter(curves.values()))[0]
    text = markdown_table(["run", "eval set", "examples", f"accuracy at epochs {epochs}"], rows)
    metrics = {"curves": {f"{r}/{s}": {"epochs": e, "accuracy": v} for (r, s), (e, v) in curves.items()}}
    return metrics, f"# Accuracy over fine-tuning epochs (greedy, exact match)\n\n{text}\n"


def plot_curves(path, curves, sets):
    from llm_recipes.reporting.plots import subplots

    fig, axes = subplots(1, len(sets), figsize=(4 * len(sets), 3.2), squeeze=False)
    for ax, s in zip(axes[0], sets):
        for (run_name, name), (epochs, values) in curves.items():
            if name == s:
                ax.plot(epochs, values, marker="o", ms=3, label=run_name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(s, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(args: SlickArguments):
    start = time.time()
    if bool(args.model_name_or_path) == bool(args.runs):
        raise RecipeError("set either model_name_or_path (categorise a model) or runs (track fine-tuning runs)")
    if args.model_name_or_path and not args.dataset_name:
        raise RecipeError("dataset_name: the facts to categorise (JSONL: question, answer)")
    if args.dry_run:
        print(markdown_table(["key", "value"], [["mode", "categorise" if args.model_name_or_path else "track"],
                                                ["model / runs", args.model_name_or_path or args.runs],
                                                ["facts", args.dataset_name], ["N_ex x k-shot", f"{args.n_prompts} x "
                                                 f"{args.k_shot}"], ["samples per prompt at T",
                                                 f"{args.n_samples} at {args.temperature}"],
                                                ["output_dir", args.output_dir]]))
        return None
    os.makedirs(args.output_dir, exist_ok=True)
    clear_report(args.output_dir)
    metrics, text = categorise(args) if args.model_name_or_path else track(args)
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    write_json_atomic(os.path.join(args.output_dir, "settings.json"), vars(args))
    return write_report(args.output_dir, "slick", metrics, wall_time_s=time.time() - start)


if __name__ == "__main__":
    run(main, lambda: parse(ARGUMENTS))
