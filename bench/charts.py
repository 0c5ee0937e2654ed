"""Draw the benchmark charts as SVG from a JSON of figures (bench/results.json).

    python bench/charts.py [RESULTS_JSON] [-o FOLDER]    # one NAME.svg per benchmark

The documentation site draws the same charts at build time (docs/hooks.py), so a chart is
never drawn by hand and never disagrees with its table. A benchmark's ``chart`` is::

    {"unit": "ms per slice", "better": "lower",
     "bars": [{"label": "datamanifest API", "value": 12.8, "ours": true}, ...]}

or ``"groups"``: a list of ``{"label": ..., "bars": [...]}`` drawn one after another with
a heading each (e.g. one group per input size). Bars are horizontal, scaled to the largest
value of the chart; ours are drawn in the accent colour. No library: plain SVG text. A
benchmark without a ``chart`` gets one drawn from its ``figures`` (bench/contract.py): one
group per case, ours beside the peer and the floor.
"""

from __future__ import annotations

import argparse
import json
from html import escape
from pathlib import Path

WIDTH = 720
LABEL_W = 300
BAR_H = 20
GAP = 6
OURS, OTHER, INK, MUTED = "#00897b", "#9e9e9e", "#212121", "#616161"


def _fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def render(title: str, chart: dict) -> str:
    """One chart: an SVG document (text)."""
    groups = chart.get("groups") or [{"label": None, "bars": chart["bars"]}]
    top = max(b["value"] for g in groups for b in g["bars"]) or 1.0
    unit = chart.get("unit", "")
    better = chart.get("better", "lower")
    y = 46
    body: list[str] = []
    for g in groups:
        if g.get("label"):
            y += 6
            body.append(f'<text x="8" y="{y + 12}" font-weight="bold" fill="{INK}">'
                        f'{escape(g["label"])}</text>')
            y += 22
        for b in g["bars"]:
            w = max(1.0, (WIDTH - LABEL_W - 90) * b["value"] / top)
            colour = OURS if b.get("ours") else OTHER
            body.append(f'<text x="{LABEL_W - 8}" y="{y + 14}" text-anchor="end" '
                        f'fill="{INK}">{escape(b["label"])}</text>')
            body.append(f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{BAR_H}" '
                        f'rx="2" fill="{colour}"><title>{escape(b["label"])}: '
                        f'{_fmt(b["value"])} {escape(unit)}</title></rect>')
            body.append(f'<text x="{LABEL_W + w + 6:.1f}" y="{y + 14}" fill="{MUTED}">'
                        f'{_fmt(b["value"])}</text>')
            y += BAR_H + GAP
    height = y + 14
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="13" '
            f'role="img" aria-label="{escape(title)}">',
            f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
            f'<text x="8" y="20" font-size="15" font-weight="bold" fill="{INK}">'
            f'{escape(title)}</text>',
            f'<text x="8" y="38" fill="{MUTED}">{escape(unit)}, {better} is better; '
            f'datamanifest in green</text>']
    return "\n".join(head + body + ["</svg>"]) + "\n"


UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "MB/s": "MB/s", "MB": "MB (peak RSS)"}


def _short(label: str, n: int = 42) -> str:
    return label if len(label) <= n else label[:n - 1] + "…"


def chart_from_figures(figures: list[dict]) -> dict | None:
    """A chart of the figures in the unit of the first one: ours, the peer, the floor per case.

    Returns None when no figure has a unit a bar can show (not ``x``).
    """
    shown = [f for f in figures or [] if f.get("unit") in UNIT_NAMES]
    if not shown:
        return None
    unit = shown[0]["unit"]
    groups = []
    for f in (f for f in shown if f["unit"] == unit):
        bars = [{"label": "datamanifest", "value": f["ours"], "ours": True}]
        if f.get("peer_value") is not None:
            bars.append({"label": _short(f.get("peer") or "peer"), "value": f["peer_value"]})
        if f.get("floor_value") is not None:
            bars.append({"label": _short("floor: " + (f.get("floor") or "")),
                         "value": f["floor_value"]})
        groups.append({"label": f["case"], "bars": bars})
    return {"unit": UNIT_NAMES[unit], "better": "higher" if unit == "MB/s" else "lower",
            "groups": groups}


def render_all(results: dict) -> dict[str, str]:
    """name -> SVG text, for every benchmark of ``results`` with a chart or figures to draw."""
    out = {}
    for name, b in results["benchmarks"].items():
        chart = b.get("chart") or chart_from_figures(b.get("figures"))
        if chart:
            out[name] = render(b["title"], chart)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="?", default=str(Path(__file__).with_name("results.json")))
    ap.add_argument("-o", "--output", default="build/charts", help="folder for the SVG files")
    args = ap.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, svg in render_all(json.loads(Path(args.results).read_text())).items():
        (out / f"{name}.svg").write_text(svg, encoding="utf-8")
        print(out / f"{name}.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
