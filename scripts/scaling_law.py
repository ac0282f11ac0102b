"""Fit a Chinchilla scaling law L(N, D) = E + A / N^alpha + B / D^beta to runs (a sweep's results.jsonl, one row per
run), bootstrap the fit for intervals, and report the compute-optimal model size and tokens per parameter for FLOP
budgets (C = 6 N D) beside Chinchilla's and Epoch AI's published laws.

    python scripts/scaling_law.py outputs/scaling-law/sweep/results.jsonl --n_key non_embedding_parameters \
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
import itertools
import json
import os

import numpy as np

from llm_recipes.config import RecipeError, run_plain
from llm_recipes.reporting.report import markdown_table

CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al. 2022, approach 3
EPOCH = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.35, "beta": 0.37}  # Besiroglu et al. 2024 (the replication)
PUBLISHED = {"Chinchilla (Hoffmann 2022)": CHINCHILLA, "Epoch (Besiroglu 2024)": EPOCH}
PARAMS = ("E", "A", "B", "alpha", "beta")


def predict(params, n, d):
    """log L for params (e, a, b, alpha, beta) with E = exp(e), A = exp(a), B = exp(b)."""
    e, a, b, alpha, beta = params
    return np.logaddexp(np.logaddexp(a - alpha * np.log(n), b - beta * np.log(d)), e)


def huber(residual, delta=1e-3):
    r = np.abs(residual)
    return np.where(r <= delta, 0.5 * r ** 2, delta * (r - 0.5 * delta))


def objective(params, log_n, log_d, log_loss, delta):
    """Sum of Huber losses of log L and its gradient in (e, a, b, alpha, beta)."""
    e, a, b, alpha, beta = params
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
    top = terms.max(axis=0)
    weights = np.exp(terms - top)
    total = weights.sum(axis=0)
    residual = top + np.log(total) - log_loss
    weights /= total  # d log-sum-exp / d term
    slope = np.clip(residual, -delta, delta)  # Huber derivative
    grad = np.array([(slope * weights[2]).sum(), (slope * weights[0]).sum(), (slope * weights[1]).sum(),
                     -(slope * weights[0] * log_n).sum(), -(slope * weights[1] * log_d).sum()])
    scale = 1.0 / delta ** 2  # L-BFGS-B's stopping rule compares changes with max(|f|, 1): keep f of order 1
    return float(huber(residual, delta).sum()) * scale, grad * scale


GRIDS = {  # initialisations: log E, log A, log B, alpha, beta
    "coarse": ([-1.0, 0.0, 1.0], [0.0, 5.0, 10.0, 20.0], [0.0, 5.0, 10.0, 20.0], [0.2, 0.6, 1.2], [0.2, 0.6, 1.2]),
    "full": ([-1.0, -0.5, 0.0, 0.5, 1.0], [0.0, 5.0, 10.0, 15.0, 20.0, 25.0], [0.0, 5.0, 10.0, 15.0, 20.0, 25.0],
             [0.0, 0.5, 1.0, 1.5, 2.0], [0.0, 0.5, 1.0, 1.5, 2.0]),
}


def as_law(x, fun):
    e, a, b, alpha, beta = x
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)), "alpha": float(alpha),
            "beta": float(beta), "objective": float(fun)}


def fit_scaling_law(n, d, loss, delta=1e-3, grid="coarse", starts=None):
    """Best L-BFGS fit over a grid of starts (or the given starts: [(log E, log A, log B, alpha, beta)]); returns
    {E, A, B, alpha, beta, objective}."""
    from scipy.optimize import minimize

    data = (np.log(np.asarray(n, float)), np.log(np.asarray(d, float)), np.log(np.asarray(loss, float)), delta)
    best = None
    for start in starts if starts is not None else itertools.product(*GRIDS[grid]):
        result = minimize(objective, np.array(start, float), args=data, jac=True, method="L-BFGS-B")
        if best is None or result.fun < best.fun:
            best = result
    return as_law(best.x, best.fun * delta ** 2)


def start_of(law):
    return (np.log(law["E"]), np.log(law["A"]), np.log(law["B"]), law["alpha"], law["beta"])


def compute_optimal(law, flops):
    """N, D minimising L under C = 6 N D: N_opt = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta))."""
    a, b, alpha, beta = law["A"], law["B"], law["alpha"], law["beta"]
    g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
    n = g * (flops / 6) ** (beta / (alpha + beta))
    d = flops / (6 * n)
    return {"flops": flops, "parameters": n, "tokens": d, "tokens_per_parameter": d / n,
            "loss": law["E"] + a / n ** alpha + b / d ** beta}


def summary_vector(law, budgets):
    """What the bootstrap gives intervals for: the five parameters, then per budget N_opt, D_opt and D/N."""
    optimal = [compute_optimal(law, c) for c in budgets]
    return [*(law[k] for k in PARAMS), *(o[k] for o in optimal for k in ("parameters", "tokens", "tokens_per_parameter"))]


def bootstrap(n, d, loss, law, budgets, resamples=200, seed=0, delta=1e-3):
    """95 % percentile intervals (scipy.stats.bootstrap over runs, paired) of summary_vector; each resample's fit
    starts from the full-data fit and from the published laws' exponents."""
    from scipy import stats

    starts = [start_of(law), (np.log(law["E"]), np.log(law["A"]), np.log(law["B"]), 0.34, 0.28)]

    def statistic(n_s, d_s, loss_s):
        return np.array(summary_vector(fit_scaling_law(n_s, d_s, loss_s, delta, starts=starts), budgets))

    result = stats.bootstrap((np.asarray(n, float), np.asarray(d, float), np.asarray(loss, float)), statistic,
                             paired=True, vectorized=False, n_resamples=resamples, confidence_level=0.95,
                             method="percentile", random_state=np.random.default_rng(seed))
    return np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


def plot(path, n, d, loss, law):
    from matplotlib import colormaps

    from llm_recipes.reporting.plots import subplots

    fig, ax = subplots(figsize=(6, 4))
    points = ax.scatter(n, loss, c=np.log10(d), cmap="viridis", label="runs")
    fig.colorbar(points, ax=ax, label="log10 tokens")
    for tokens in sorted(set(d)):
        xs = np.geomspace(min(n) / 2, max(n) * 2, 50)
        ax.plot(xs, law["E"] + law["A"] / xs ** law["alpha"] + law["B"] / tokens ** law["beta"], linewidth=1,
                color=colormaps["viridis"]((np.log10(tokens) - np.log10(min(d))) / max(np.ptp(np.log10(d)), 1e-9)))
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("loss")
    ax.set_title(f"L = {law['E']:.3g} + {law['A']:.3g}/N^{law['alpha']:.3g} + {law['B']:.3g}/D^{law['beta']:.3g}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_contours(path, n, d, loss, law):
    """Fitted iso-loss contours over (N, D), the runs, and compute-optimal frontiers: fitted, Chinchilla, Epoch, and
    the D = 20 N rule of thumb."""
    from llm_recipes.reporting.plots import subplots

    ns = np.geomspace(min(n) / 3, max(n) * 3, 120)
    ds = np.geomspace(min(d) / 3, max(max(d) * 3, 120 * ns[0]), 120)  # tall enough to show D = 20 N and the frontiers
    grid_n, grid_d = np.meshgrid(ns, ds)
    fitted = law["E"] + law["A"] / grid_n ** law["alpha"] + law["B"] / grid_d ** law["beta"]
    fig, ax = subplots(figsize=(7, 5))
    contours = ax.contour(grid_n, grid_d, fitted, levels=12, cmap="viridis", linewidths=1)
    ax.clabel(contours, fontsize=7, fmt="%.2f")
    runs = ax.scatter(n, d, c=loss, cmap="viridis", edgecolors="k", zorder=3, label="runs (colour: loss)")
    fig.colorbar(runs, ax=ax, label="measured loss")
    flops = np.geomspace(6 * ns[0] * ds[0], 6 * ns[-1] * ds[-1], 60)
    for label, curve, style in [("fitted compute-optimal", law, "-"), ("Chinchilla compute-optimal", CHINCHILLA, "--"),
                                ("Epoch compute-optimal", EPOCH, ":")]:
        optimal = [compute_optimal(curve, c) for c in flops]
        ax.plot([o["parameters"] for o in optimal], [o["tokens"] for o in optimal], style, color="k", label=label)
    ax.plot(ns, 20 * ns, color="tab:red", linewidth=1, label="D = 20 N")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(ns[0], ns[-1])
    ax.set_ylim(ds[0], ds[-1])
    ax.set_xlabel("parameters N")
    ax.set_ylabel("tokens D")
    ax.set_title("fitted iso-loss contours and compute-optimal frontiers")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def interval(value, low, high, digits=3):
    return f"{value:.{digits}g} [{low:.{digits}g}, {high:.{digits}g}]" if low is not None else f"{value:.{digits}g}"


def ratio_comparison(optimal, low, high, n):
    """How far the fitted tokens per parameter is from ~20, computed, with the reasons that apply at this scale."""
    ratio = optimal["tokens_per_parameter"]
    at = f"C = {optimal['flops']:.3g} FLOPs"
    published = {name: compute_optimal(law, optimal["flops"])["tokens_per_parameter"] for name, law in
                 PUBLISHED.items()}
    if low is None:
        where = "(no bootstrap: run with --bootstrap 200 for an interval)."
    else:
        where = "the 95 % interval includes 20" if low <= 20 <= high else "the 95 % interval excludes 20"
        spread = np.log10(high / low) if low > 0 else float("inf")
        where += f"; it spans {spread:.1f} orders of magnitude" + \
            (", so this grid does not pin the ratio down." if spread > 1 else ".")
    lines = [f"At {at} (the largest compute among the runs) the fit's compute-optimal ratio is "
             f"{interval(ratio, low, high)} tokens per parameter, {ratio / 20:.2g} times the ~20 of Chinchilla's rule "
             f"of thumb; {where}"]
    lines.append("The published laws extrapolated to the same compute give " +
                 ", ".join(f"{name} {r:.3g}" for name, r in published.items()) +
                 " tokens per parameter (the ratio moves with compute as C^((alpha - beta)/(alpha + beta)) whenever "
                 "alpha != beta, so a law's ratio at this tiny compute need not be 20).")
    below = np.log10(1e18 / optimal["flops"])
    lines.append(f"Why the ratio need not be near 20 here: the runs are {min(n):.2g}-{max(n):.2g}-parameter models "
                 f"at up to {optimal['flops']:.2g} FLOPs, about {below:.0f} orders of magnitude below Chinchilla's "
                 "runs (~1e18-1e22 FLOPs, 70M-16B parameters), and the exponents fitted there need not carry over; N "
                 "is what n_key says (non-embedding parameters in recipes/scaling-law, while the embedding matrix is "
                 "a large share of these models); each budget's cosine schedule is a few dozen steps, so warm-up and "
                 "decay weigh more than at scale; on a small corpus larger budgets repeat data, and repeated tokens are "
                 "worth less than fresh ones (Muennighoff et al. 2023); and a 12-cell grid pins alpha and beta "
                 "loosely, which the intervals show.")
    return "\n\n".join(lines)


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
