"""The bench's chart: one PNG with latency percentiles, server CPU per delivery and connect times, ours vs the tutorial.

matplotlib (tests/requirements.txt) is imported only here, with the Agg backend: no display needed.
"""

from pathlib import Path
from typing import Any

COLOURS = {"tutorial": "#9aa5b1", "ours": "#2f6fdf"}


def write_chart(rows: list[dict[str, Any]], path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [row for row in rows if "latency_ms" in row]
    configs = list(dict.fromkeys(row["config"] for row in measured))
    apps = [app for app in ("tutorial", "ours") if any(row["app"] == app for row in measured)]
    by_key = {(row["config"], row["app"]): row for row in measured}
    width = 0.8 / max(1, len(apps))
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.8))

    def bars(axis, value, ylabel: str, heading: str, points: tuple[str, ...] = ("",)) -> None:
        for a, app in enumerate(apps):
            for p, point in enumerate(points):
                xs, heights = [], []
                for c, config in enumerate(configs):
                    row = by_key.get((config, app))
                    height = value(row, point) if row else None
                    if height is not None:
                        xs.append(c + (a - (len(apps) - 1) / 2) * width)
                        heights.append(height)
                # Percentiles as overlapping bars, highest first and lightest, lowest last and darkest.
                alpha = 1.0 - 0.3 * (len(points) - 1 - p)
                axis.bar(xs, heights, width * 0.9, color=COLOURS[app], alpha=alpha, label=f"{app} {point}".strip())
        axis.set_xticks(range(len(configs)), configs, rotation=20, fontsize=8)
        axis.set_ylabel(ylabel)
        axis.set_title(heading, fontsize=10)
        axis.legend(fontsize=7)

    bars(
        axes[0],
        lambda row, point: row["latency_ms"].get(point),
        "ms",
        "delivery latency (p50 / p95 / p99)",
        points=("p99", "p95", "p50"),
    )
    bars(axes[1], lambda row, _: row.get("server_cpu_us_per_delivery"), "µs", "server CPU per delivered message")
    bars(
        axes[2],
        lambda row, point: row["connect_ms"].get(point),
        "ms",
        "connect time while all join at once (max / p95 / p50)",
        points=("max", "p95", "p50"),
    )
    for c, config in enumerate(configs):
        failed = [by_key[(config, app)]["failed_connects"] for app in apps if (config, app) in by_key]
        if any(failed):
            axes[2].annotate(f"refused {'/'.join(map(str, failed))}", (c, 0), fontsize=7, color="red")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


KIND_COLOURS = {
    "message": "#2f6fdf",
    "presence": "#e0a030",
    "typing": "#8bc34a",
    "lobby": "#c2185b",
    "status": "#9aa5b1",
    "other": "#555555",
}


def write_workspace_chart(rows: list[dict[str, Any]], path: Path, *, title: str) -> None:
    """tests.bench.workspace: frames per socket per minute by kind (steady, idle), server CPU ours vs tutorial."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [row for row in rows if "steady" in row]
    figure, (frames_axis, cpu_axis) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [3, 2]})
    labels, x = [], 0
    for row in measured:
        for phase in ("steady", "idle"):
            figures = row.get(phase)
            if not figures:
                continue
            bottom = 0.0
            for kind, colour in KIND_COLOURS.items():
                value = figures["frames_per_socket_min"][kind]
                frames_axis.bar(x, value, 0.7, bottom=bottom, color=colour, label=kind if x == 0 else None)
                bottom += value
            frames_axis.annotate(f"{bottom:.1f}", (x, bottom), ha="center", va="bottom", fontsize=7)
            labels.append(f"{row['config']}\n{row['app']}\n{phase}")
            x += 1
    frames_axis.set_xticks(range(len(labels)), labels, fontsize=7)
    frames_axis.set_ylabel("frames per socket per minute")
    frames_axis.set_title("frames per socket per minute, by kind", fontsize=10)
    frames_axis.legend(fontsize=7)
    configs = list(dict.fromkeys(row["config"] for row in measured))
    by_key = {(row["config"], row["app"]): row for row in measured}
    for a, app in enumerate(("tutorial", "ours")):
        for c, config in enumerate(configs):
            row = by_key.get((config, app))
            if not row:
                continue
            bottom = 0.0
            for p, share in enumerate(row["steady"]["cpu_share"]):
                cpu_axis.bar(
                    c + (a - 0.5) * 0.4,
                    share * 100,
                    0.38,
                    bottom=bottom,
                    color=COLOURS[app],
                    alpha=1.0 - 0.35 * p,
                    edgecolor="white",
                    label=f"{app}" if c == 0 and p == 0 else None,
                )
                bottom += share * 100
            cpu_axis.annotate(f"{bottom:.0f}%", (c + (a - 0.5) * 0.4, bottom), ha="center", va="bottom", fontsize=7)
    cpu_axis.set_xticks(range(len(configs)), configs, fontsize=8)
    cpu_axis.set_ylabel("% of one core (utime + stime / steady state), stacked per process")
    cpu_axis.set_title("server CPU in the steady state, ours vs the tutorial", fontsize=10)
    cpu_axis.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
