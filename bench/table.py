"""The one table of every benchmark figure, from a results.json (bench/run.py writes it).

``markdown(results)`` is bench/results.md; ``table(results)`` its table alone (the
documentation's Performance page shows it, docs/hooks.py). Columns: benchmark, case, ours,
peer, floor, ratio, target, holds, command. No third-party library.
"""

from __future__ import annotations

LOWER_IS_BETTER = {"s": True, "ms": True, "MB": True, "MB/s": False, "x": None}


def _num(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def ratios(f: dict) -> str:
    """How many times better than the peer, and how far from the floor (1.00: at the floor).

    For times and sizes: peer / ours and ours / floor; for speeds (MB/s): ours / peer and
    floor / ours. So in both cases above 1 beats the peer, and 1 is the floor.
    """
    lower = LOWER_IS_BETTER.get(f.get("unit"))
    ours, peer, floor = f.get("ours"), f.get("peer_value"), f.get("floor_value")
    out = []
    if lower is not None and ours:
        if peer:
            out.append(f"{(peer / ours if lower else ours / peer):.2f}x peer")
        if floor:
            out.append(f"{(ours / floor if lower else floor / ours):.2f}x floor")
    return " · ".join(out)


COLUMNS = ("benchmark", "case", "ours", "peer", "floor", "ratio", "target", "holds", "command")


def legend(results: dict) -> str:
    """The paragraph above the table: the run, the machine, how to read the ratios."""
    m = results.get("machine", {})
    if not m:
        return ("Figures recorded before `make bench` wrote this table (no figure rows yet); "
                "regenerate with `make bench`.")
    return (
        f"Measured by `{results.get('command', 'make bench')}` on {m.get('date', '?')}, "
        f"{m.get('cores', '?')} cores, {m.get('ram_gib', '?')} GiB RAM, Python "
        f"{m.get('python', '?')} ({m.get('platform', '?')}); the run took "
        f"{results.get('duration', '?')}. Every figure is beside its peer and its floor measured "
        "in the same run. **ratio**: how many times better than the peer (peer ÷ ours for times "
        "and sizes, ours ÷ peer for speeds) and how far from the floor (ours ÷ floor for times "
        "and sizes, floor ÷ ours for speeds; 1.00 is the floor). Regenerate with `make bench` "
        "(`.venv/bin/python bench/run.py --only NAME` for one benchmark).")


def table(results: dict, order: list[str] | None = None) -> list[str]:
    """The lines of the one Markdown table of every figure in ``results``.

    Parameters
    ----------
    results
        A results.json document.
    order
        Benchmark names in the table's order (default: the order of ``results``; failed
        benchmarks without an entry last).

    Returns
    -------
    list of str
        The header, the separator, one line per figure (and per failed benchmark).
    """
    m = results.get("machine", {})
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    failed = results.get("failed", {})
    benches = results.get("benchmarks", {})
    known = list(order or benches)
    names = sorted(set(benches) | set(failed),
                   key=lambda n: (known.index(n) if n in known else len(known), n))
    for name in names:
        b = benches.get(name, {})
        label = name
        if name in failed and b:
            label += f" (failed in this run; figures of {b.get('measured', '?')})"
        elif b.get("measured") and b.get("measured") != m.get("date", "")[:10]:
            label += f" (measured {b['measured']})"
        for f in b.get("figures") or []:
            u = f["unit"]
            peer = f"{f['peer']}: {_num(f['peer_value'])} {u}" if f.get("peer_value") is not None \
                else (f.get("peer") or "—")
            floor = f"{f['floor']}: {_num(f['floor_value'])} {u}" \
                if f.get("floor_value") is not None else (f.get("floor") or "—")
            holds = {True: "yes", False: "**no**", None: "—"}[f.get("holds")]
            cells = [label, f["case"], f"{_num(f['ours'])} {u}", peer, floor, ratios(f) or "—",
                     f.get("target") or "—", holds, f"`{f['command']}`"]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        if b and not b.get("figures"):
            cells = [label, "(no figures: an entry from before the table)", *["—"] * 6,
                     f"`{b.get('command', '')}`"]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        if name in failed:
            f = failed[name]
            cells = [name, f"**FAILED** ({f.get('measured', '?')}): {f['error']}", *["—"] * 5,
                     "**no**", f"`{f['command']}`"]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def markdown(results: dict, order: list[str] | None = None) -> str:
    """results.json as ONE Markdown table (bench/results.md): a heading, the legend, the table."""
    return "\n".join([
        "# Benchmark results", "",
        "<!-- Generated by bench/run.py (`make bench`) from bench/results.json: do not edit. -->",
        "", legend(results), "", *table(results, order)]) + "\n"
