"""The noise-matrix heat map of ``labelsift noise-matrix --plot`` (matplotlib).

matplotlib is an optional dependency (``pip install "labelsift[cli]"``) and
is imported only inside these functions, never when labelsift is imported.
The figure is drawn with the Agg canvas directly (no pyplot, no global
backend switch), so it works without a display and in any thread.

:func:`noise_matrix_figure` builds and returns the Figure (the tests inspect
its artists); :func:`save_png` renders it and writes it atomically.
"""
from __future__ import annotations

import io

import numpy as np

INSTALL_HINT = 'matplotlib is not installed; --plot needs it: pip install "labelsift[cli]" (or: pip install matplotlib)'

#: The log colour scale starts at the power of ten at or below the smallest
#: positive rate, within these bounds; rates below it (and zeros) are white.
LOG_FLOOR_RANGE = (1e-6, 1e-3)
#: Class names (else indices) as tick labels up to this many classes.
MAX_NAMED_TICKS = 50
#: Cell values printed up to this many classes.
MAX_CELL_TEXT = 20


def check_matplotlib() -> None:
    """Raise ImportError with the install hint unless matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(INSTALL_HINT) from None


def log_floor(m: np.ndarray) -> float:
    """Where the log colour scale starts (see LOG_FLOOR_RANGE)."""
    pos = m[m > 0]
    if not len(pos):
        return LOG_FLOOR_RANGE[1]
    return float(np.clip(10.0 ** np.floor(np.log10(pos.min())), *LOG_FLOOR_RANGE))


def _cell_text(v: float) -> str:
    if v == 0:
        return "0"
    if v >= 0.1:
        return f"{v:.2f}"  # "0.93"
    if round(v, 3) >= 0.001:
        return f"{v:.3f}"  # "0.040", "0.004"
    return f"{v:.0e}".replace("e-0", "e-")  # "3e-4"


def largest_off_diagonal(m: np.ndarray, top: int):
    """[(given, true, rate)] of the ``top`` largest positive off-diagonal entries (ties: lower index)."""
    off = np.array(m, dtype=np.float64, copy=True)
    np.fill_diagonal(off, -np.inf)
    out = []
    for f in np.argsort(-off, axis=None, kind="stable")[:top].tolist():
        g, t = divmod(f, off.shape[1])
        if not off[g, t] > 0:
            break
        out.append((g, t, float(off[g, t])))
    return out


def _layout(k: int, names):
    """(figure, heat-map axes, side-panel axes or None, tick font size)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    named_ticks, cell_text = k <= MAX_NAMED_TICKS, k <= MAX_CELL_TEXT
    longest = max(len(s) for s in names) if named_ticks else 0
    side = 6.0 if cell_text else 7.5  # inches of the matrix itself
    tick_pt = float(np.clip(0.55 * side * 72 / k, 5.5, 10)) if named_ticks else 9.0
    label_in = longest * tick_pt * 0.6 / 72 if named_ticks else 0.4  # room the tick labels take
    panel_in = 0.0 if cell_text else 3.6
    fig = Figure(figsize=(side + 2.0 + label_in + panel_in, side + 1.2 + 0.75 * label_in), dpi=150,
                 layout="constrained")
    FigureCanvasAgg(fig)
    if cell_text:
        return fig, fig.add_subplot(), None, tick_pt
    gs = fig.add_gridspec(1, 2, width_ratios=[side + 1.2 + label_in, panel_in])
    return fig, fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1]), tick_pt


def _ticks(ax, k: int, names, tick_pt: float) -> None:
    from matplotlib.ticker import MaxNLocator

    if k > MAX_NAMED_TICKS:
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(nbins=10, integer=True))
        ax.set_xlabel("true label (class index)")
        ax.set_ylabel("given label (class index)")
        return
    longest = max(len(s) for s in names)
    ax.set_xlabel("true label")
    ax.set_ylabel("given label")
    ax.set_xticks(np.arange(k), labels=names, fontsize=tick_pt, rotation=45 if longest > 2 else 0,
                  ha="right" if longest > 2 else "center", rotation_mode="anchor")
    ax.set_yticks(np.arange(k), labels=names, fontsize=tick_pt)
    ax.tick_params(length=2)


def _cell_values(ax, m: np.ndarray, norm, floor: float) -> None:
    k = m.shape[0]
    text_pt = float(np.clip(0.3 * 6.0 * 72 / k, 5, 9))
    for i in range(k):
        for j in range(k):
            v = m[i, j]
            dark = v >= floor and norm(v) < 0.6  # viridis is dark below ~60%
            ax.text(j, i, _cell_text(v), ha="center", va="center", fontsize=text_pt,
                    color="white" if dark else ("black" if v > 0 else "0.6"))


def _side_panel(side_ax, m: np.ndarray, names, cmap, norm, floor: float) -> None:
    """The largest off-diagonal rates (true -> given), which single cells of a big matrix cannot show."""
    top = largest_off_diagonal(m, 25)
    ypos = np.arange(len(top))
    rates = np.array([r for _, _, r in top])
    side_ax.barh(ypos, rates, color=cmap(norm(np.maximum(rates, floor))), height=0.7)
    longest = max((len(names[t]) + len(names[g]) for g, t, _ in top), default=0)
    side_ax.set_yticks(ypos, labels=[f"{names[t]} \u2192 {names[g]}" for g, t, _ in top],
                       fontsize=7 if longest > 20 else 8)
    side_ax.invert_yaxis()
    side_ax.set_xlabel("P(given label | true label)")
    side_ax.set_title(f"{len(top)} largest off-diagonal rates\n(true label \u2192 given label)", fontsize=9)
    side_ax.tick_params(axis="x", labelsize=8)
    for y0, r in zip(ypos, rates):
        side_ax.text(r, y0, f" {r:.3f}", va="center", ha="left", fontsize=7)
    if len(rates):
        side_ax.set_xlim(0, rates.max() * 1.3)
    for spine in ("top", "right"):
        side_ax.spines[spine].set_visible(False)


def noise_matrix_figure(noise_matrix, *, num_examples: int, num_issues: int, class_names=None):
    """A matplotlib Figure of ``noise_matrix[given][true] = P(given label | true label)``.

    Rows (y axis) are given labels, columns (x axis) true labels; a log
    colour scale from :func:`log_floor` to 1, zeros (and values below the
    floor) in white. Class names (or indices) label the ticks when K <= 50;
    cell values are printed when K <= 20; above that a side panel lists the
    largest off-diagonal rates (true -> given), which single cells of a big
    matrix cannot show. The heat map's title states N, K and the estimated
    number of label issues. The first axes of the figure is the heat map.
    """
    check_matplotlib()
    import matplotlib
    from matplotlib.colors import LogNorm

    m = np.asarray(noise_matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"noise_matrix must be square, got shape {m.shape}")
    k = m.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} classes")
    fig, ax, side_ax, tick_pt = _layout(k, names)
    cmap = matplotlib.colormaps["viridis"].with_extremes(under="white", bad="white")
    floor = log_floor(m)
    norm = LogNorm(vmin=floor, vmax=1.0, clip=False)
    # one cell is at least one pixel up to K ~ 1100 (7.5 in at 150 dpi): show every cell as it is
    im = ax.imshow(m, cmap=cmap, norm=norm, interpolation="nearest" if k <= 1100 else "antialiased",
                   aspect="equal")
    _ticks(ax, k, names, tick_pt)
    if k <= MAX_CELL_TEXT:
        _cell_values(ax, m, norm, floor)
    cb = fig.colorbar(im, ax=ax, extend="min", shrink=0.85, pad=0.02)
    below = "0" if floor <= m[m > 0].min(initial=1.0) else f"0 or below {floor:g}"
    cb.set_label(f"P(given label | true label), log scale (white: {below})")
    pct = 100.0 * num_issues / max(1, num_examples)
    ax.set_title(
        "Estimated noise matrix: noise_matrix[given][true] = P(given label | true label)\n"
        f"N = {num_examples:,} examples, K = {k} classes, estimated label issues: {num_issues:,} ({pct:.1f}%)",
        fontsize=10,
    )
    if side_ax is not None:
        _side_panel(side_ax, m, names, cmap, norm, floor)
    return fig


def png_bytes(fig) -> bytes:
    """The Figure rendered as PNG (Agg), margins trimmed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.1, facecolor="white")
    return buf.getvalue()


def save_png(fig, path) -> None:
    """Render the Figure and write it to ``path`` atomically."""
    from ._common.output import atomic_write

    atomic_write(path, png_bytes(fig))
