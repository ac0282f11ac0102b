"""Scoring for the EOS-boundary probe: log-likelihood of a reply after a prefix (training/recall_target.py's
continuation_scores: batched, like lm-eval's loglikelihood requests, with greedy exactness), the probe's prompts per
item (three, or five with the previous passage), per-arm boundary verdicts paired over items or seeds, and the probe
stage's per-run final figures and plots. The training callback that stops at a recall target lives in
training/recall_target.py."""

import os
from statistics import fmean as mean

from llm_recipes.training.recall_target import continuation_scores

REPLY = "{}です。"
CONDITIONS = ("eos", "no_eos", "no_fact", "passage_eos", "passage_no_eos")
# the (without [EOS], across [EOS]) pair of each probe: after a complete previous sample, after a bare passage
PAIRS = {"sample": ("no_eos", "eos"), "passage": ("passage_no_eos", "passage_eos")}
METRICS = ("recall", "logprob")  # what score_probe gives per condition


def probe_prompts(record, eos_token):
    """The prompts of one probe item: the previous sample, then [EOS], then the next sample's question (as packed SFT
    rows join samples: the tokenizer adds no BOS); the same text with a newline instead of [EOS] (one sample); the
    question alone (the floor: the answer is a random name). With a `passage` (the previous sample's passage alone,
    no question or answer after it) also passage + [EOS] + question and passage + newline + question: whether the
    [EOS] token itself, rather than the end of a complete sample, is what the model stops at."""
    prompts = {"eos": f"{record['context']}{eos_token}{record['question']}",
               "no_eos": f"{record['context']}\n{record['question']}", "no_fact": record["question"]}
    if record.get("passage"):
        prompts.update(passage_eos=f"{record['passage']}{eos_token}{record['question']}",
                       passage_no_eos=f"{record['passage']}\n{record['question']}")
    return prompts


def score_probe(model, tokenizer, records):
    """{condition: {"recall": [0/1 per item], "logprob": [log p(reply) per item]}}: the reply is the answer + です。,
    recall = greedy decoding gives it exactly. The passage conditions only when every record has a passage."""
    prompts = [probe_prompts(r, tokenizer.eos_token) for r in records]
    conditions = [c for c in CONDITIONS if all(c in p for p in prompts)]
    pairs = [(p[c], REPLY.format(r["answer"])) for c in conditions for p, r in zip(prompts, records)]
    scores, n = continuation_scores(model, tokenizer, pairs), len(records)
    return {c: {"recall": [int(s["greedy"]) for s in scores[i * n:(i + 1) * n]],
                "logprob": [s["logprob"] for s in scores[i * n:(i + 1) * n]]} for i, c in enumerate(conditions)}


def eval_recall(model, tokenizer, records):
    """Held-out prompt/completion records (the answer copied from the prompt): (recall, loss per completion token
    including [EOS], as SFT trains it)."""
    scores = continuation_scores(model, tokenizer, [(r["prompt"], r["completion"] + tokenizer.eos_token)
                                                    for r in records])
    return (sum(s["greedy"] for s in scores) / len(scores),
            -sum(s["logprob"] for s in scores) / max(sum(s["tokens"] for s in scores), 1))


def boundary_verdicts(per_step, reference=None, metric="recall", pair=PAIRS["sample"]):
    """Per checkpoint of one arm: the [EOS] gap (`pair` = (without, across) conditions, default no_eos - eos, paired
    by position: probe items, or seeds when each value is a seed's mean over the items) with its t interval and
    verdict; with `reference` (another arm's per_step, same steps and units) also the gap minus the reference arm's
    gap.
    The onset is the first step from which the claim holds at every later checkpoint (None if never)."""
    from llm_recipes.reporting.stats import REPRODUCED, verdict

    rows = []
    for step, scores in per_step:
        without, across = pair
        row = {"step": step, "gap": verdict(scores[without][metric], scores[across][metric])}
        if reference is not None:
            ref = dict(reference)[step]
            gap = [a - b for a, b in zip(scores[without][metric], scores[across][metric])]
            ref_gap = [a - b for a, b in zip(ref[without][metric], ref[across][metric])]
            row["vs_reference"] = verdict(gap, ref_gap)
        rows.append(row)

    def onset(key):
        start = None
        for row in rows:
            if key not in row:
                return None
            start = (row["step"] if start is None else start) if row[key]["verdict"] == REPRODUCED else None
        return start

    return {"rows": rows, "onset": {key: onset(key) for key in ("gap", "vs_reference")}}


def final_figures(rows):
    """The last checkpoint's per-condition means and [EOS] gaps of one run (read by research/verdict.py)."""
    last = rows[-1][1]
    out = {f"{m}_{c}": mean(last[c][m]) for c in CONDITIONS if c in last for m in METRICS}
    out.update({f"{m}_gap": out[f"{m}_no_eos"] - out[f"{m}_eos"] for m in METRICS}, step=rows[-1][0])
    if "passage_eos" in last:
        out.update({f"{m}_passage_gap": out[f"{m}_passage_no_eos"] - out[f"{m}_passage_eos"] for m in METRICS})
    return out | {k: last[k] for k in ("eval_recall", "eval_loss") if k in last}


def plot_probe(per_arm, evals_by_arm, losses, output_dir):
    """The probe stage's figures in output_dir: probe.png (per probe pair, recall and log p(reply) against the SFT
    step per arm, across [EOS] and with a newline instead, mean and 95 % t interval, with the question alone) and
    training.png (train loss per seed, held-out loss and recall per arm, `per_arm` / `evals_by_arm` / `losses` as
    research/probe_eos.py builds them)."""
    from llm_recipes.reporting.plots import subplots
    from llm_recipes.reporting.stats import t_interval

    panels = [(name, metric) for name, metric in (("sample", "recall"), ("passage", "recall"), ("sample", "logprob"))
              if PAIRS[name][0] in next(iter(per_arm.values()))[0][1]]
    fig, axes = subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (name, metric) in zip(axes[0], panels):
        without, across = PAIRS[name]
        label = "recall (greedy reply exact)" if metric == "recall" else "mean log p(reply)"
        for i, (arm, rows) in enumerate(per_arm.items()):
            steps = [s for s, _ in rows]
            for cond, style, what in ((across, "-o", "across [EOS]"), (without, "--s", "newline, no [EOS]")):
                cells = [t_interval(r[cond][metric]) for _, r in rows]
                ax.errorbar(steps, [m for m, _, _ in cells], yerr=[[m - lo for m, lo, _ in cells],
                                                                   [hi - m for m, _, hi in cells]],
                            fmt=style, color=f"C{i}", capsize=3, markersize=4, label=f"{arm}: {what}")
        rows = next(iter(per_arm.values()))
        ax.plot([s for s, _ in rows], [mean(r["no_fact"][metric]) for _, r in rows], ":", color="gray",
                label="question alone")
        before = "a complete previous sample" if name == "sample" else "the previous passage alone"
        ax.set(xlabel="SFT step", ylabel=label)
        ax.set_title(f"{metric} after {before}\n(mean, 95% t interval)", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, "probe.png"), dpi=120)
    fig, axes = subplots(1, 3, figsize=(13, 3.8))
    for i, arm in enumerate(per_arm):
        for j, path in enumerate(losses[arm]):
            axes[0].plot(*zip(*losses[arm][path]), color=f"C{i}", alpha=0.8, label=arm if j == 0 else None)
        for ax, key in zip(axes[1:], ("eval_loss", "eval_recall")):
            points = evals_by_arm[arm].get(key)
            if points:
                ax.plot(*zip(*points), "-o", color=f"C{i}", label=arm)
    for ax, title in zip(axes, ("train loss (each seed)", "held-out completion loss (mean of seeds)",
                                "held-out in-context recall (mean of seeds)")):
        ax.set(xlabel="step", title=title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, "training.png"), dpi=120)
