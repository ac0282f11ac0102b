"""Report figures drawn without pyplot.

`matplotlib.figure.Figure` renders to PNG on its own, so a stage never switches the global backend: a notebook that
calls a stage's `main(...)` keeps its inline plots, and threads or workers share no pyplot state.
"""

from matplotlib.figure import Figure


def subplots(nrows=1, ncols=1, figsize=None, **kwargs):
    """Like `plt.subplots`, without pyplot: returns (figure, axes)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)
