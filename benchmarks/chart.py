"""The PNG bar chart: requests/s per client in every cell (matplotlib, optional).

One panel per loop and route; concurrency on the x axis, one bar per client,
a log scale so the slowest client stays visible next to the ceiling; the whisker
on each bar spans the rounds' min to max.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from .report import ROUTE_LABELS, Row, StaleRow


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def draw(path: Path, rows: list[Row], stale: list[StaleRow], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted(
        {(r.loop, r.scheme, r.route) for r in rows},
        key=lambda p: (p[0], p[1], _route_order(p[2])),
    )
    extra = 1 if stale else 0
    count = len(panels) + extra
    cols = min(4, max(2, count))
    nrows = -(-count // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.8 * cols, 3.8 * nrows + 0.8), squeeze=False)
    clients = list(dict.fromkeys(r.client for r in rows))
    colors = {c: plt.get_cmap("tab10")(i) for i, c in enumerate(clients)}
    for ax, (loop, scheme, route) in zip(axes.flat, panels, strict=False):
        mine = [r for r in rows if (r.loop, r.scheme, r.route) == (loop, scheme, route)]
        _panel(ax, mine, clients, colors)
        tls = " over HTTPS" if scheme == "https" else ""
        ax.set_title(f"{loop}: {ROUTE_LABELS[route]}{tls}", fontsize=9)
    if stale:
        _stale_panel(axes.flat[len(panels)], stale, colors)
    for ax in list(axes.flat)[count:]:
        ax.set_visible(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[c]) for c in clients]
    fig.suptitle(title, fontsize=10)
    fig.legend(handles, clients, loc="lower center", ncol=len(clients), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _route_order(route: str) -> int:
    return list(ROUTE_LABELS).index(route) if route in ROUTE_LABELS else 99


def _panel(ax, rows: list[Row], clients: list[str], colors: dict) -> None:  # type: ignore[no-untyped-def]
    from matplotlib.ticker import FuncFormatter, LogLocator

    levels = sorted({r.concurrency for r in rows})
    width = 0.8 / max(1, len(clients))
    for i, client in enumerate(clients):
        xs, ys, lo, hi = [], [], [], []
        for x, level in enumerate(levels):
            row = next((r for r in rows if r.client == client and r.concurrency == level), None)
            if row is None or not row.rps:
                continue
            xs.append(x + (i - (len(clients) - 1) / 2) * width)
            ys.append(row.rps)
            lo.append(row.rps - (row.rps_min or row.rps))
            hi.append((row.rps_max or row.rps) - row.rps)
        ax.bar(xs, ys, width, color=colors[client], yerr=[lo, hi], capsize=1.5, linewidth=0)
    values = [r.rps for r in rows if r.rps]
    if values:  # log bars need a fixed floor, or the shortest look like nothing
        ax.set_yscale("log")
        ax.set_ylim(10 ** math.floor(math.log10(min(values))), max(values) * 1.6)
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xticks(range(len(levels)), [f"c={c}" for c in levels])
    ax.set_ylabel("requests/s (median)", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)


def _stale_panel(ax, rows: list[StaleRow], colors: dict) -> None:  # type: ignore[no-untyped-def]
    groups = list(dict.fromkeys((r.loop, r.route) for r in rows))
    clients = list(dict.fromkeys(r.client for r in rows))
    width = 0.8 / max(1, len(clients))
    for i, client in enumerate(clients):
        for x, (loop, route) in enumerate(groups):
            row = next(
                (r for r in rows if (r.client, r.loop, r.route) == (client, loop, route)), None
            )
            if row is None or row.per_10k is None:
                continue
            pos = x + (i - (len(clients) - 1) / 2) * width
            ax.bar(pos, row.per_10k, width, color=colors.get(client, "grey"))
            ax.annotate(
                f"{row.per_10k:.0f}", (pos, row.per_10k), ha="center", va="bottom", fontsize=6
            )
    ax.set_xticks(range(len(groups)), [f"{loop}\n{route}" for loop, route in groups])
    ax.set_title("stale connections: errors per 10,000 requests", fontsize=9)
    ax.tick_params(labelsize=8)
