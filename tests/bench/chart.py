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
