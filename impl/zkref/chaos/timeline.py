"""Self-contained HTML/SVG drawings: violation timelines, and throughput/latency over a run.

Hand-written SVG rather than matplotlib/plotly: the report must open in any browser from a CI
artefact with no network, the drawings are simple (bars on lanes, two line charts), and it keeps
the checker free of a heavy dependency.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from zkref.chaos.history import Op

if TYPE_CHECKING:
    from zkref.chaos.checker import CheckReport, Violation

__all__ = ["FaultWindow", "render_html", "render_run_plots", "violation_svg"]

_STATUS_FILL = {"ok": "#8fd18f", "fail": "#f2c66d", "info": "#c9c9c9"}
_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} h2{font-size:1.1em;margin-top:2em}
.pass{color:#17823b}.fail{color:#c0262d}.unknown{color:#a66b00}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ccc;padding:.2em .5em}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}
svg text{font-family:ui-monospace,monospace}
"""


def _esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def violation_svg(viol: Violation, *, width: int = 1000) -> str:
    """One lane per process; each op a bar from call to return (info ops fade out to the
    right edge); the op no linearization gets past is outlined in red."""
    ops = sorted(viol.ops, key=lambda o: (o.call, o.invoke_index))
    if not ops:
        return ""
    t0 = min(o.call for o in ops)
    t1 = max(max(o.ret or o.call for o in ops), max(o.call for o in ops))
    span = max(t1 - t0, 1)
    procs = sorted({o.process for o in ops})
    lane = {p: i for i, p in enumerate(procs)}
    left, right, lane_h, top = 70, 20, 46, 24
    plot_w = width - left - right
    height = top + lane_h * len(procs) + 30

    def x(t: int) -> float:
        return left + plot_w * (t - t0) / span

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        '<defs><linearGradient id="fade" x1="0" x2="1"><stop offset="0" stop-color="#c9c9c9"/>'
        '<stop offset="1" stop-color="#c9c9c9" stop-opacity="0"/></linearGradient></defs>',
    ]
    for p, i in lane.items():
        y = top + i * lane_h
        out.append(f'<text x="4" y="{y + 24}" font-size="12">p{p}</text>')
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y + lane_h - 4}" '
            f'y2="{y + lane_h - 4}" stroke="#eee"/>'
        )
    for o in ops:
        y = top + lane[o.process] * lane_h + 6
        xa = x(o.call)
        xb = x(o.ret) if o.ret is not None else width - right
        w = max(xb - xa, 3.0)
        fill = "url(#fade)" if o.ret is None else _STATUS_FILL[o.status]
        is_culprit = viol.culprit is not None and o.invoke_index == viol.culprit.invoke_index
        stroke = ' stroke="#c0262d" stroke-width="3"' if is_culprit else ' stroke="#555"'
        out.append(
            f'<rect x="{xa:.1f}" y="{y}" width="{w:.1f}" height="30" rx="4" fill="{fill}"'
            f"{stroke}><title>{_esc(f'[{o.invoke_index}] ' + o.describe())}</title></rect>"
        )
        label = o.describe().split(" ", 1)[1]
        out.append(f'<text x="{xa + 4:.1f}" y="{y + 19}" font-size="11">{_esc(label[:80])}</text>')
    ms = span / 1e6
    out.append(
        f'<text x="{left}" y="{height - 8}" font-size="11">0 ms</text>'
        f'<text x="{width - right - 80}" y="{height - 8}" font-size="11">{ms:.1f} ms</text>'
    )
    out.append("</svg>")
    return "\n".join(out)


def render_html(report: CheckReport, path: Path, *, title: str = "zkref chaos check") -> Path:
    """Write the verdicts and one timeline per violation to a self-contained HTML file."""
    from zkref.chaos.checker import render_text

    cls = {True: "pass", False: "fail", None: "unknown"}
    word = {True: "PASS", False: "FAIL", None: "UNKNOWN"}
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(title)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}: <span class='{cls[report.valid]}'>{word[report.valid]}</span></h1>",
        f"<p>{report.n_events} events, {report.n_ops} operations, checked in "
        f"{report.seconds:.3f} s.</p>",
        "<table><tr><th>property</th><th>verdict</th><th>summary</th></tr>",
    ]
    for v in report.verdicts:
        parts.append(
            f"<tr><td>{_esc(v.property)}</td><td class='{cls[v.valid]}'>{word[v.valid]}</td>"
            f"<td>{_esc(v.summary)}</td></tr>"
        )
    parts.append("</table>")
    for v in report.verdicts:
        for viol in v.violations:
            parts.append(f"<h2>{_esc(v.property)}: {_esc(viol.key)}</h2>")
            parts.append(f"<p>{_esc(viol.message)}</p>")
            parts.append(violation_svg(viol))
    parts.append(f"<h2>Text report</h2><pre>{_esc(render_text(report))}</pre>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


# -- run plots ------------------------------------------------------------------------------

FaultWindow = tuple[float, float, str]  # (start_s, end_s, label), seconds since run start


def _line_chart(
    title: str,
    series: Sequence[tuple[str, str, Sequence[tuple[float, float]]]],
    faults: Sequence[FaultWindow],
    *,
    t_end: float,
    y_label: str,
    width: int = 1000,
    height: int = 260,
) -> str:
    left, right, top, bottom = 60, 20, 28, 36
    pw, ph = width - left - right, height - top - bottom
    y_max = max((y for _, _, pts in series for _, y in pts), default=1.0) or 1.0
    t_end = max(t_end, 1e-9)

    def x(t: float) -> float:
        return left + pw * t / t_end

    def y(v: float) -> float:
        return top + ph * (1 - v / y_max)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
        f'<text x="{left}" y="16" font-size="13">{_esc(title)}</text>',
    ]
    palette = ["#f4a3a3", "#a3c4f4", "#f4d7a3", "#c3a3f4", "#a3f4c8"]
    kinds = sorted({label.split(" ")[0] for _, _, label in faults})
    for s, e, label in faults:
        color = palette[kinds.index(label.split(" ")[0]) % len(palette)]
        out.append(
            f'<rect x="{x(s):.1f}" y="{top}" width="{max(x(e) - x(s), 2):.1f}" height="{ph}" '
            f'fill="{color}" opacity="0.45"><title>{_esc(label)} {s:.1f}-{e:.1f}s</title></rect>'
        )
        out.append(f'<text x="{x(s) + 2:.1f}" y="{top + 12}" font-size="10">{_esc(label)}</text>')
    out.append(
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#333"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#333"/>'
    )
    for frac in (0.0, 0.5, 1.0):
        v = y_max * frac
        out.append(f'<text x="4" y="{y(v) + 4:.1f}" font-size="10">{v:.3g}</text>')
    for i in range(6):
        t = t_end * i / 5
        out.append(f'<text x="{x(t) - 8:.1f}" y="{height - 18}" font-size="10">{t:.0f}s</text>')
    out.append(
        f'<text x="{left + pw / 2 - 40:.0f}" y="{height - 4}" font-size="10">time (s) · '
        f"{_esc(y_label)}</text>"
    )
    for name, color, pts in series:
        if not pts:
            continue
        if name.endswith("(points)"):
            for t, v in pts:
                out.append(
                    f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="1.6" fill="{color}" '
                    'opacity="0.6"/>'
                )
        else:
            d = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{d}"/>')
    lx = left + pw - 200
    for i, (name, color, _) in enumerate(series):
        out.append(
            f'<rect x="{lx}" y="{top + 4 + 14 * i}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{top + 13 + 14 * i}" font-size="10">{_esc(name)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def render_run_plots(
    ops: Sequence[Op],
    faults: Sequence[FaultWindow],
    path: Path,
    *,
    title: str = "zkref chaos run",
    bucket_s: float = 1.0,
    t0_ns: int | None = None,
) -> Path:
    """Throughput (ok/fail/info per second) and latency (each op; ok in green, info in grey)
    over time, with fault windows shaded; written as one self-contained HTML file."""
    # Time origin: the harness's (the fault windows are relative to it), else the first call.
    if ops:
        t0 = t0_ns if t0_ns is not None else min(o.call for o in ops)
        t_end = max((o.ret or o.call) - t0 for o in ops) / 1e9
    else:
        t0, t_end = t0_ns or 0, 1.0
    n_buckets = int(t_end / bucket_s) + 1
    counts: dict[str, list[int]] = {s: [0] * n_buckets for s in ("ok", "fail", "info")}
    lat_ok: list[tuple[float, float]] = []
    lat_fail: list[tuple[float, float]] = []
    for o in ops:
        end = o.ret if o.ret is not None else o.call
        b = max(0, min(int((end - t0) / 1e9 / bucket_s), n_buckets - 1))
        counts[o.status][b] += 1
        if o.ret is not None:
            point = ((o.call - t0) / 1e9, (o.ret - o.call) / 1e6)
            (lat_ok if o.status == "ok" else lat_fail).append(point)
    thr = [
        (
            f"{s} ops/s",
            c,
            [((i + 0.5) * bucket_s, counts[s][i] / bucket_s) for i in range(n_buckets)],
        )
        for s, c in (("ok", "#17823b"), ("fail", "#d08a00"), ("info", "#777"))
    ]
    lat = [
        ("ok latency (points)", "#17823b", lat_ok),
        ("fail latency (points)", "#d08a00", lat_fail),
    ]
    body = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>",
        f"<p>{len(ops)} operations over {t_end:.1f} s; shaded: fault windows.</p>",
        _line_chart("Throughput", thr, faults, t_end=t_end, y_label="ops/s"),
        _line_chart("Latency", lat, faults, t_end=t_end, y_label="ms (info ops not drawn)"),
        "<h2>Faults</h2><table><tr><th>start s</th><th>end s</th><th>fault</th></tr>",
        *(f"<tr><td>{s:.2f}</td><td>{e:.2f}</td><td>{_esc(lbl)}</td></tr>" for s, e, lbl in faults),
        "</table></body></html>",
    ]
    path.write_text("\n".join(body), encoding="utf-8")
    return path
