"""Sweep plots: a metric against one variable (lines, one per group), a heatmap over two variables, or bars per point."""


def plot_sweep(path, rows, plot):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kind, x, y = plot.get("kind", "line"), plot["x"], plot["y"]
    labels = (x, y)
    rows = [r for r in rows if r.get(plot["value"] if kind == "heatmap" else y) is not None]
    if kind == "heatmap":
        value = plot["value"]
        xs, ys = sorted({r[x] for r in rows}), sorted({r[y] for r in rows})
        grid = [[next((r[value] for r in rows if r[x] == xv and r[y] == yv), float("nan")) for xv in xs] for yv in ys]
        fig, ax = plt.subplots(figsize=(1.3 * len(xs) + 2, 0.9 * len(ys) + 1.5))
        im = ax.imshow(grid, cmap="viridis_r", aspect="auto")
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        ax.set_yticks(range(len(ys)), [str(v) for v in ys])
        for i, line in enumerate(grid):
            for j, v in enumerate(line):
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", color="w", fontsize=8)
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
        rows = sorted(rows, key=lambda r: r[y], reverse=better)
        fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(rows) + 1.5))
        ax.barh([str(r.get(x, r["name"])) for r in rows][::-1], [r[y] for r in rows][::-1], color="tab:blue")
        for i, r in enumerate(rows[::-1]):
            ax.text(r[y], i, f" {r[y]:.4g}", va="center", fontsize=8)
        lo, hi = min(r[y] for r in rows), max(r[y] for r in rows)
        ax.set_xlim(lo - 0.5 * (hi - lo or 1), hi + 0.3 * (hi - lo or 1))  # start near the smallest value
        note = f"best {y}: {rows[0][y]:.4g} at {x}={rows[0].get(x, rows[0]['name'])}"
        labels = (y, x)  # the metric runs along the horizontal axis
    else:
        # group: one key or a list of keys (one line per combination); rows lacking x or a group key (e.g. extra
        # points of another kind) stay in the table but not in the lines.
        group = plot.get("group") or []
        group = [group] if isinstance(group, str) else list(group)
        left_out = [r["name"] for r in rows if r.get(x) is None or any(r.get(k) is None for k in group)]
        rows = [r for r in rows if r["name"] not in left_out]
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for g in sorted({tuple(r[k] for k in group) for r in rows}, key=str):
            pts = sorted((r[x], r[y]) for r in rows if tuple(r[k] for k in group) == g)
            label = ", ".join(f"{k}={v}" for k, v in zip(group, g)) if group else y
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        if plot.get("logx"):
            ax.set_xscale("log")
        ax.legend(fontsize=8)
        best = max(rows, key=lambda r: r[y]) if plot.get("higher_is_better", True) else min(rows, key=lambda r: r[y])
        note = f"best {y}: {best[y]:.4g} at {x}={best[x]}" + \
            (" (" + ", ".join(f"{k}={best[k]}" for k in group) + ")" if group else "")
        if left_out:
            note += f"\nnot in the plot (no {x} or {'/'.join(group)}): {', '.join(left_out)}"
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(plot.get("title", path.rsplit("/", 1)[-1]))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return note
