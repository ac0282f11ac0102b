"""Fit a Chinchilla scaling law L(N, D) = E + A / N^alpha + B / D^beta to sweep results and report the compute-optimal
model size and token count for a FLOP budget (C = 6 N D).

    python scripts/scaling_law.py outputs/depth-width-sweep/results.jsonl --budget 1e21 [--n_key parameters ...]

As Besiroglu et al. (2024) corrected Chinchilla's approach 3: minimise the Huber loss (delta 1e-3) between log L and the
log-sum-exp form of the prediction, with L-BFGS from a grid of initialisations (scipy), keeping the best fit.
Writes scaling_law.json and scaling_law.png next to the results file.
"""

import argparse
import itertools
import json
import os

import numpy as np

from llm_recipes.config import RecipeError, run_plain


def predict(params, n, d):
    """log L for params (e, a, b, alpha, beta) with E = exp(e), A = exp(a), B = exp(b)."""
    e, a, b, alpha, beta = params
    return np.logaddexp(np.logaddexp(a - alpha * np.log(n), b - beta * np.log(d)), e)


def huber(residual, delta=1e-3):
    r = np.abs(residual)
    return np.where(r <= delta, 0.5 * r ** 2, delta * (r - 0.5 * delta))


GRIDS = {  # initialisations: log E, log A, log B, alpha, beta
    "coarse": ([-1.0, 0.0, 1.0], [0.0, 5.0, 10.0, 20.0], [0.0, 5.0, 10.0, 20.0], [0.2, 0.6, 1.2], [0.2, 0.6, 1.2]),
    "full": ([-1.0, -0.5, 0.0, 0.5, 1.0], [0.0, 5.0, 10.0, 15.0, 20.0, 25.0], [0.0, 5.0, 10.0, 15.0, 20.0, 25.0],
             [0.0, 0.5, 1.0, 1.5, 2.0], [0.0, 0.5, 1.0, 1.5, 2.0]),
}


def fit_scaling_law(n, d, loss, delta=1e-3, grid="coarse"):
    """Best (over a grid of starts) L-BFGS fit; returns {E, A, B, alpha, beta, objective}."""
    from scipy.optimize import minimize

    n, d, log_loss = np.asarray(n, float), np.asarray(d, float), np.log(np.asarray(loss, float))

    def objective(p):
        return huber(predict(p, n, d) - log_loss, delta).sum()

    best = None
    for start in itertools.product(*GRIDS[grid]):
        result = minimize(objective, np.array(start), method="L-BFGS-B")
        if best is None or result.fun < best.fun:
            best = result
    e, a, b, alpha, beta = best.x
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)), "alpha": float(alpha),
            "beta": float(beta), "objective": float(best.fun)}


def compute_optimal(law, flops):
    """N, D minimising L under C = 6 N D: N_opt = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta))."""
    a, b, alpha, beta = law["A"], law["B"], law["alpha"], law["beta"]
    g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
    n = g * (flops / 6) ** (beta / (alpha + beta))
    d = flops / (6 * n)
    return {"flops": flops, "parameters": n, "tokens": d, "tokens_per_parameter": d / n,
            "loss": law["E"] + a / n ** alpha + b / d ** beta}


def plot(path, n, d, loss, law):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    points = ax.scatter(n, loss, c=np.log10(d), cmap="viridis", label="runs")
    fig.colorbar(points, ax=ax, label="log10 tokens")
    for tokens in sorted(set(d)):
        xs = np.geomspace(min(n) / 2, max(n) * 2, 50)
        ax.plot(xs, law["E"] + law["A"] / xs ** law["alpha"] + law["B"] / tokens ** law["beta"], linewidth=1,
                color=plt.cm.viridis((np.log10(tokens) - np.log10(min(d))) / max(np.ptp(np.log10(d)), 1e-9)))
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("loss")
    ax.set_title(f"L = {law['E']:.3g} + {law['A']:.3g}/N^{law['alpha']:.3g} + {law['B']:.3g}/D^{law['beta']:.3g}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="JSONL with one row per run (e.g. a sweep's results.jsonl)")
    parser.add_argument("--n_key", default="parameters")
    parser.add_argument("--d_key", default="tokens_seen")
    parser.add_argument("--loss_key", default="eval_loss")
    parser.add_argument("--budget", type=float, nargs="+", default=[1e18, 1e20, 1e22])
    parser.add_argument("--grid", choices=sorted(GRIDS), default="coarse", help="initialisations for L-BFGS")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.results):
        raise RecipeError(f"{args.results}: file not found")
    rows = [json.loads(line) for line in open(args.results, encoding="utf-8") if line.strip()]
    rows = [r for r in rows if all(r.get(k) is not None for k in (args.n_key, args.d_key, args.loss_key))]
    if len(rows) < 5:
        raise RecipeError(f"{args.results}: {len(rows)} usable rows with {args.n_key}, {args.d_key}, {args.loss_key}; "
                          "a 5-parameter fit needs at least 5")
    n, d, loss = (np.array([r[k] for r in rows], float) for k in (args.n_key, args.d_key, args.loss_key))
    law = fit_scaling_law(n, d, loss, grid=args.grid)
    optimal = [compute_optimal(law, c) for c in args.budget]
    out = os.path.dirname(os.path.abspath(args.results))
    with open(os.path.join(out, "scaling_law.json"), "w", encoding="utf-8") as f:
        json.dump({"law": law, "compute_optimal": optimal, "points": len(rows)}, f, indent=2)
    plot(os.path.join(out, "scaling_law.png"), n, d, loss, law)
    print(f"fit on {len(rows)} runs: L(N, D) = {law['E']:.4g} + {law['A']:.4g}/N^{law['alpha']:.4g} + "
          f"{law['B']:.4g}/D^{law['beta']:.4g}")
    for o in optimal:
        print(f"C = {o['flops']:.3g} FLOPs: N_opt = {o['parameters']:.3g} parameters, D_opt = {o['tokens']:.3g} tokens "
              f"({o['tokens_per_parameter']:.1f} tokens/parameter), predicted loss {o['loss']:.4g}")
    return law, optimal


if __name__ == "__main__":
    run_plain(main)
