"""The figures of committed studies, drawn from their tables: the same curves as the app's Studies view
(spar_core.figures.studies), written as PNG next to each study's table.

    python bench/study_figures.py STUDY [STUDY ...] [--metrics dice_pct,mssd_mm]

STUDY is a study folder (its study.json and table.csv; `spar study` writes both). A data-efficiency study gets
one figure per metric (``<metric>.png``), a robustness study one per corruption and metric
(``<metric>_<corruption>.png``). Static export goes through kaleido, which drives the local Chromium with the
plotly.js that ships in plotly and no MathJax (kaleido's default MathJax is a CDN: nothing is fetched).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import kaleido
import pandas as pd

from spar_core.data.corruptions import CORRUPTIONS
from spar_core.figures.studies import efficiency_curves, robustness_curves

WIDTH, HEIGHT = 760, 440


def figures(folder: Path, metrics: list[str]) -> list[Path]:
    study = json.loads((folder / "study.json").read_text())
    table = pd.read_csv(folder / "table.csv")
    written = []
    for metric in metrics:
        if study["kind"] == "robustness":
            for kind in (k for k in CORRUPTIONS if k in set(table["corruption"])):
                fig = robustness_curves(table, kind, metric, title=f"{folder.name}: {kind}")
                written.append(_write(fig, folder / f"{metric}_{kind}.png"))
        else:
            written.append(_write(efficiency_curves(table, metric, title=folder.name), folder / f"{metric}.png"))
    return written


def _write(fig, path: Path) -> Path:
    fig.update_layout(width=WIDTH, height=HEIGHT, template="plotly_white")
    image = kaleido.calc_fig_sync(fig, opts={"format": "png", "width": WIDTH, "height": HEIGHT, "scale": 1})
    path.write_bytes(image)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", type=Path)
    parser.add_argument("--metrics", default="dice_pct,mssd_mm")
    args = parser.parse_args()
    kaleido.start_sync_server(n=1, mathjax=False, timeout=300)  # one browser for every figure
    try:
        for folder in args.studies:
            for path in figures(folder, args.metrics.split(",")):
                print(path, f"{path.stat().st_size / 1e3:.0f} kB", flush=True)
    finally:
        kaleido.stop_sync_server()


if __name__ == "__main__":
    main()
