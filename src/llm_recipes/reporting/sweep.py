"""Sweep reports: per-point means with 95 % intervals over seeds, comparative claims judged from paired seeds, and
plots (a metric against one variable with one line per group, a heatmap over two variables, or bars per point), with
error bars when the rows carry intervals (`<metric>_low` / `<metric>_high`)."""

import math

from llm_recipes.errors import RecipeError
from llm_recipes.reporting.stats import format_interval, t_interval, verdict

CLAIM_KEYS = {"name", "better", "worse", "metric", "higher_is_better", "source"}


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def summarize_points(rows, points, metrics):
    """One row per point from its per-seed rows: labels, `seeds` (how many), and per metric the mean with a 95 %
    t interval over seeds (`<metric>`, `<metric>_low`, `<metric>_high`); a metric that is not numeric keeps its
    first value."""
    summary = []
    for name, labels in points:
        runs = [r for r in rows if r["name"] == name]
        if not runs:
            continue
        row = {"name": name, **labels, "seeds": len(runs)}
        for m in metrics:
            values = [r.get(m) for r in runs]
            numbers = [v for v in values if _number(v)]
            if numbers and len(numbers) == len([v for v in values if v is not None]):
                row[m], row[f"{m}_low"], row[f"{m}_high"] = t_interval(numbers)
            else:
                row[m] = next((v for v in values if v is not None), None)
        summary.append(row)
    return summary


def parse_claims(spec, points, where):
    """The sweep file's `claim:` / `claims:` (a mapping or a list of them) -> [{name, better, worse, metric,
    higher_is_better, source}] with better / worse resolved to point names (a point name, or a mapping of labels that
    matches exactly one point). Checked before any run."""
    raw = spec.get("claims", spec.get("claim")) or []
    raw = [raw] if isinstance(raw, dict) else raw
    claims = []
    for i, claim in enumerate(raw):
        at = f"{where}: claims[{i}]"
        if not isinstance(claim, dict) or not {"better", "worse", "metric"} <= set(claim) or set(claim) - CLAIM_KEYS:
            raise RecipeError(f"{at}: expected {{better, worse, metric, and optionally higher_is_better, name, "
                              f"source}}; got {claim}")
        resolved = {}
        for side in ("better", "worse"):
            selector = claim[side]
            if isinstance(selector, str):
                matches = [n for n, _ in points if n == selector]
            elif isinstance(selector, dict):
                matches = [n for n, labels in points if all(labels.get(k) == v for k, v in selector.items())]
            else:
                matches = []
            if len(matches) != 1:
                raise RecipeError(f"{at}.{side}: {selector!r} matches {len(matches)} points (needs exactly one of "
                                  f"{', '.join(n for n, _ in points)})")
            resolved[side] = matches[0]
        claims.append({"name": claim.get("name", f"{resolved['better']} beats {resolved['worse']}"),
                       "source": claim.get("source"), **resolved, "metric": claim["metric"],
                       "higher_is_better": bool(claim.get("higher_is_better", True))})
    return claims


def evaluate_claim(claim, rows, seeds):
    """The claim's verdict from the per-seed rows, paired by seed (stats.verdict: the 95 % t interval of the mean
    paired difference, signed so that a positive difference supports the claim)."""
    def values(name):
        by_seed = {r.get("seed"): r.get(claim["metric"]) for r in rows if r["name"] == name}
        return [by_seed.get(s) if _number(by_seed.get(s)) else None for s in seeds]

    better, worse = values(claim["better"]), values(claim["worse"])
    result = {**claim, "better_values": better, "worse_values": worse}
    if all(v is None for v in better) or all(v is None for v in worse):
        return {**result, "verdict": "not run", "mean_difference": None, "low": None, "high": None, "seeds": 0}
    return {**result, **verdict(better, worse, higher_is_better=claim["higher_is_better"])}


def claim_line(result):
    """One line: the claim, the paired difference with its interval, and the computed verdict."""
    direction = "higher" if result["higher_is_better"] else "lower"
    head = (f"claim \"{result['name']}\"" + (f" ({result['source']})" if result.get("source") else "") +
            f": {result['better']} vs {result['worse']} on {result['metric']} ({direction} is better)")
    if result["verdict"] == "not run":
        return f"{head}: not run"
    diff = format_interval(result["mean_difference"], result["low"], result["high"])
    return (f"{head}: paired difference {diff} (95 % t interval over {result['seeds']} seeds; > 0 supports the "
            f"claim) -> **{result['verdict']}**")


def interval_cell(row, key):
    """`mean [low, high]` for a summarized metric, the plain value otherwise."""
    if f"{key}_low" in row and _number(row.get(key)):
        return format_interval(row[key], row[f"{key}_low"], row[f"{key}_high"], digits=4)
    value = row.get(key, "-")
    return "-" if value is None else value


def _half_widths(rows, key):
    """Error bar lengths (below, above) from the rows' intervals, or None without intervals."""
    if not all(f"{key}_low" in r for r in rows):
        return None
    return [[r[key] - r[f"{key}_low"] for r in rows], [r[f"{key}_high"] - r[key] for r in rows]]


def plot_sweep(path, rows, plot):
    from llm_recipes.reporting.plots import subplots

    kind, x, y = plot.get("kind", "line"), plot["x"], plot["y"]
    labels = (x, y)
    rows = [r for r in rows if r.get(plot["value"] if kind == "heatmap" else y) is not None]
    if kind == "heatmap":
        value = plot["value"]
        xs, ys = sorted({r[x] for r in rows}), sorted({r[y] for r in rows})
        cells = {(r[x], r[y]): r for r in rows}
        grid = [[cells[(xv, yv)][value] if (xv, yv) in cells else float("nan") for xv in xs] for yv in ys]
        fig, ax = subplots(figsize=(1.3 * len(xs) + 2, 0.9 * len(ys) + 1.5))
        im = ax.imshow(grid, cmap="viridis_r", aspect="auto")
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        ax.set_yticks(range(len(ys)), [str(v) for v in ys])
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                r = cells.get((xv, yv))
                if r is not None:
                    spread = f"\n±{(r[f'{value}_high'] - r[f'{value}_low']) / 2:.2g}" if f"{value}_low" in r else ""
                    ax.text(j, i, f"{r[value]:.3g}{spread}", ha="center", va="center", color="w", fontsize=8)
        fig.colorbar(im, ax=ax, label=value)
        best = min(rows, key=lambda r: r[value])
        note = f"best {value}: {best[value]:.4g} at {x}={best[x]}, {y}={best[y]}"
        for yv in ys:  # per row of the heatmap (e.g. per parameter budget): the best point and its aspect ratio
            b = min((r for r in rows if r[y] == yv), key=lambda r: r[value])
            ratio = f", hidden/layers = {b['hidden_size'] / b['num_hidden_layers']:.0f}" \
                if "hidden_size" in b and "num_hidden_layers" in b else ""
            note += f"\n- {y}={yv}: best {x}={b[x]} ({value} {b[value]:.4g}{ratio})"
    elif kind == "bar":  # one bar per point (x: the label key), best first
        better = plot.get("higher_is_better", True)
        rows = sorted(rows, key=lambda r: r[y], reverse=better)[::-1]
        fig, ax = subplots(figsize=(6.5, 0.45 * len(rows) + 1.5))
        errors = _half_widths(rows, y)
        ax.barh([str(r.get(x, r["name"])) for r in rows], [r[y] for r in rows], color="tab:blue", xerr=errors,
                capsize=3)
        for i, r in enumerate(rows):
            ax.text(r.get(f"{y}_high", r[y]), i, f" {r[y]:.4g}", va="center", fontsize=8)
        lo = min(r.get(f"{y}_low", r[y]) for r in rows)
        hi = max(r.get(f"{y}_high", r[y]) for r in rows)
        ax.set_xlim(lo - 0.5 * (hi - lo or 1), hi + 0.3 * (hi - lo or 1))  # start near the smallest value
        rows = rows[::-1]
        note = f"best {y}: {rows[0][y]:.4g} at {x}={rows[0].get(x, rows[0]['name'])}"
        labels = (y, x)  # the metric runs along the horizontal axis
    else:
        # group: one key or a list of keys (one line per combination); rows lacking x or a group key (e.g. extra
        # points of another kind) stay in the table but not in the lines.
        group = plot.get("group") or []
        group = [group] if isinstance(group, str) else list(group)
        left_out = [r["name"] for r in rows if r.get(x) is None or any(r.get(k) is None for k in group)]
        rows = [r for r in rows if r["name"] not in left_out]
        fig, ax = subplots(figsize=(6.5, 4.2))
        for g in sorted({tuple(r[k] for k in group) for r in rows}, key=str):
            line = sorted((r for r in rows if tuple(r[k] for k in group) == g), key=lambda r: r[x])
            label = ", ".join(f"{k}={v}" for k, v in zip(group, g)) if group else y
            ax.errorbar([r[x] for r in line], [r[y] for r in line], yerr=_half_widths(line, y), marker="o",
                        capsize=3, label=label)
        if plot.get("logx"):
            ax.set_xscale("log")
        ax.legend(fontsize=8)
        best = max(rows, key=lambda r: r[y]) if plot.get("higher_is_better", True) else min(rows, key=lambda r: r[y])
        note = f"best {y}: {best[y]:.4g} at {x}={best[x]}" + \
            (" (" + ", ".join(f"{k}={best[k]}" for k in group) + ")" if group else "")
        if left_out:
            note += f"\nnot in the plot (no {x} or {'/'.join(group)}): {', '.join(left_out)}"
    if any(f"{y if kind != 'heatmap' else plot['value']}_low" in r for r in rows):
        note += "\n(means over seeds; error bars: 95 % t intervals)" if kind != "heatmap" else \
            "\n(means over seeds; ± half the 95 % t interval)"
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(plot.get("title", path.rsplit("/", 1)[-1]))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return note
