"""Fit a Chinchilla scaling law L(N, D) = E + A / N^alpha + B / D^beta to runs (a sweep's results.jsonl, one row per
run), bootstrap the fit for intervals, and report the compute-optimal model size and tokens per parameter for FLOP
budgets (C = 6 N D) beside Chinchilla's and Epoch AI's published laws.

    python research/scaling_law.py outputs/scaling-law/sweep/results.jsonl --n_key non_embedding_parameters \
        --bootstrap 200 --budget 1e21

As Besiroglu et al. (2024) corrected Chinchilla's approach 3: minimise the Huber loss (delta 1e-3) between log L and the
log-sum-exp form of the prediction, with L-BFGS (scipy, analytic gradient) from a grid of initialisations, keeping the
best fit. The bootstrap (scipy.stats.bootstrap, percentile, runs resampled with replacement) refits each resample from
the full fit, and gives 95 % intervals on E, A, B, alpha, beta and on the compute-optimal N, D and tokens per
parameter at every budget; the first budget is always the largest compute among the runs. Writes scaling_law.json,
scaling_law.md, scaling_law.png (loss against N, fitted curves) and scaling_law_contours.png (fitted iso-loss contours
over N and D with the fitted, Chinchilla and Epoch compute-optimal frontiers and D = 20 N) next to the results file.
"""

import argparse
import json
import os

import numpy as np

from llm_recipes.config import run_plain
from llm_recipes.errors import RecipeError
from llm_recipes.reporting.report import markdown_table
from llm_recipes.reporting.scaling import (
    GRIDS,
    PARAMS,
    PUBLISHED,
    bootstrap,
    compute_optimal,
    fit_scaling_law,
    interval,
    plot,
    plot_contours,
    ratio_comparison,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="JSONL with one row per run (e.g. a sweep's results.jsonl)")
    parser.add_argument("--n_key", default="parameters")
    parser.add_argument("--d_key", default="tokens_seen")
    parser.add_argument("--loss_key", default="eval_loss")
    parser.add_argument("--budget", type=float, nargs="+", default=[1e18, 1e20, 1e22])
    parser.add_argument("--grid", choices=sorted(GRIDS), default="coarse", help="initialisations for L-BFGS")
    parser.add_argument("--bootstrap", type=int, default=0, help="resamples for 95 %% intervals (0: none; >= 200)")
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's random seed")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.results):
        raise RecipeError(f"{args.results}: file not found")
    rows = [json.loads(line) for line in open(args.results, encoding="utf-8") if line.strip()]
    rows = [r for r in rows if all(r.get(k) is not None for k in (args.n_key, args.d_key, args.loss_key))]
    if len(rows) < 5:
        raise RecipeError(f"{args.results}: {len(rows)} usable rows with {args.n_key}, {args.d_key}, {args.loss_key}; "
                          "a 5-parameter fit needs at least 5")
    if 0 < args.bootstrap < 200:
        raise RecipeError(f"--bootstrap {args.bootstrap}: use 0 (no intervals) or at least 200 resamples")
    n, d, loss = (np.array([r[k] for r in rows], float) for k in (args.n_key, args.d_key, args.loss_key))
    law = fit_scaling_law(n, d, loss, grid=args.grid)
    budgets = [float(np.max(6 * n * d)), *args.budget]
    optimal = [compute_optimal(law, c) for c in budgets]
    intervals = {}
    if args.bootstrap:
        print(f"bootstrap: {args.bootstrap} resamples of {len(rows)} runs ...", flush=True)
        low, high = bootstrap(n, d, loss, law, budgets, args.bootstrap, args.seed)
        names = [*PARAMS, *(f"{k}@{c:.3g}" for c in budgets for k in ("parameters", "tokens", "tokens_per_parameter"))]
        intervals = {k: [float(lo), float(hi)] for k, lo, hi in zip(names, low, high)}
        for o in optimal:
            o["intervals"] = {k: intervals[f"{k}@{o['flops']:.3g}"] for k in ("parameters", "tokens",
                                                                              "tokens_per_parameter")}
    out = os.path.dirname(os.path.abspath(args.results))
    plot(os.path.join(out, "scaling_law.png"), n, d, loss, law)
    plot_contours(os.path.join(out, "scaling_law_contours.png"), n, d, loss, law)

    def cell(key, value, source=None):
        lo, hi = (source or intervals).get(key, (None, None))
        return interval(value, lo, hi)

    fit_table = markdown_table(["parameter", "fit [95 % bootstrap interval]", *PUBLISHED],
                               [[k, cell(k, law[k]), *(f"{p[k]:.4g}" for p in PUBLISHED.values())] for k in PARAMS])
    opt_rows = []
    for o in optimal:
        iv = o.get("intervals", {})
        published = [compute_optimal(p, o["flops"])["tokens_per_parameter"] for p in PUBLISHED.values()]
        opt_rows.append([f"{o['flops']:.3g}", cell("parameters", o["parameters"], iv), cell("tokens", o["tokens"], iv),
                         cell("tokens_per_parameter", o["tokens_per_parameter"], iv), *(f"{r:.3g}" for r in published)])
    opt_table = markdown_table(["FLOPs", "N_opt", "D_opt", "tokens/parameter", *(f"{k} tokens/parameter"
                                                                               for k in PUBLISHED)], opt_rows)
    first_iv = optimal[0].get("intervals", {}).get("tokens_per_parameter", (None, None))
    comparison = ratio_comparison(optimal[0], *first_iv, n)
    markdown = (f"## Scaling-law fit ({len(rows)} runs; N = {args.n_key}, D = {args.d_key}, L = {args.loss_key}"
                f"{f'; {args.bootstrap} bootstrap resamples' if args.bootstrap else ''})\n\n"
                f"L(N, D) = E + A/N^alpha + B/D^beta\n\n{fit_table}\n\nCompute-optimal allocation (C = 6 N D):\n\n"
                f"{opt_table}\n\n{comparison}\n\nPlots: scaling_law.png, scaling_law_contours.png\n")
    with open(os.path.join(out, "scaling_law.md"), "w", encoding="utf-8") as f:
        f.write(markdown)
    with open(os.path.join(out, "scaling_law.json"), "w", encoding="utf-8") as f:
        json.dump({"law": law, "intervals": intervals, "bootstrap_resamples": args.bootstrap,
                   "compute_optimal": optimal, "points": len(rows), "n_key": args.n_key, "d_key": args.d_key,
                   "loss_key": args.loss_key, "published": PUBLISHED, "comparison": comparison}, f, indent=2)
    print(markdown)
    return law, optimal  # optimal[0]: the runs' largest compute, then --budget


if __name__ == "__main__":
    run_plain(main)
