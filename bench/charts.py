"""SVG charts of a benchmark report (stdlib only): harness.py writes them beside the Markdown.

- `ratio_chart`: the summary table as bars: for every cell, one bar per quiver surface, its
  ratio to the best peer of its peer set (the "vs best peer" of the table), on a log scale
  around a line at 1.0× (a bar grows right of the line where quiver is ahead, left where behind).
- `rates_chart`: one workload's cells, one panel each: one bar per client, the median req/s (MB/s
  for streams) with a min–max error bar over the rounds.

Both take the report's cells (harness.py's `cells_out`: dicts with `rows`, each row with
`client`, `role`, `status`, `summary`, `vs_peer`, `best_peer`) and return the SVG text.
"""

import math
from xml.sax.saxutils import escape

FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
# The quiver surfaces' colours, in the order of the summary's columns; peers grey, h2load dark.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#ad494a")
PEER = "#aab2bd"
CEILING = "#4d4d4d"
GRID = "#e3e6ea"
WIDTH = 960


def text_width(s, size):
    """A rough width of `s` in pixels at font size `size` (no font metrics in the stdlib)."""
    return len(s) * size * 0.6


def colors_for(surfaces):
    """Surface name -> colour, stable across the charts of one report."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(surfaces)}


def cell_label(c):
    """A short label of a cell: `get-1k c64 h2`."""
    return f"{c['workload']} c{c['concurrency']} {c['protocol']}"


def fmt_ratio(x):
    return f"{x:.2f}×" if x < 10 else f"{x:.1f}×"


def fmt_value(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"


class Svg:
    """A list of SVG elements with a few helpers; `str()` gives the document."""

    def __init__(self):
        self.parts = []

    def text(self, x, y, s, size=11, anchor="start", weight="normal", fill="#222"):
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                          f'font-weight="{weight}" fill="{fill}">{escape(str(s))}</text>')

    def rect(self, x, y, w, h, fill, tip=None):
        """A rectangle; `tip` a tooltip (an SVG <title>)."""
        head = (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" '
                f'fill="{fill}"')
        self.parts.append(f"{head}><title>{escape(tip)}</title></rect>" if tip else f"{head}/>")

    def line(self, x1, y1, x2, y2, stroke="#222", width=1):
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                          f'stroke="{stroke}" stroke-width="{width}"/>')

    def doc(self, width, height):
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
                f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}">\n'
                f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(self.parts) + "\n</svg>\n")


def legend(svg, items, x0, y, width):
    """Colour swatches with names, flowing over as many lines as needed; returns the next y."""
    x = x0
    for name, color in items:
        w = 14 + text_width(name, 11) + 16
        if x + w > x0 + width and x > x0:
            x, y = x0, y + 18
        svg.rect(x, y - 10, 10, 10, color)
        svg.text(x + 14, y, name)
        x += w
    return y + 18


def log_ticks(lo, hi):
    """1-2-5 ticks between lo and hi (both > 0)."""
    out = []
    for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if lo * 0.999 <= v <= hi * 1.001:
                out.append(v)
    return out


def snap_down(x):
    """The largest 1-2-5 value <= x."""
    e = math.floor(math.log10(x))
    for m in (5, 2, 1):
        if m * 10.0 ** e <= x:
            return m * 10.0 ** e
    return 10.0 ** (e - 1) * 5


def snap_up(x):
    """The smallest 1-2-5 value >= x."""
    e = math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * 10.0 ** e >= x:
            return m * 10.0 ** e
    return 10.0 ** (e + 1)


def tick_label(v):
    return f"{v:g}×"


def ratio_chart(cells, surfaces, colors, title):
    """Grouped horizontal bars, one group per cell, one bar per quiver surface with a ratio."""
    groups = []
    for c in cells:
        by = {r["client"]: r for r in c["rows"]}
        bars = [(n, by[n]["vs_peer"], by[n].get("best_peer") or "") for n in surfaces
                if n in by and by[n].get("vs_peer")]
        groups.append((cell_label(c), bars))
    vals = [v for _, bars in groups for _, v, _ in bars]
    # room beyond the shortest and longest bar for its label
    lo = snap_down(min([0.5] + [v / 6 for v in vals]))
    hi = snap_up(max([2.0] + [v * 6 for v in vals]))
    label_w = max([text_width(g[0], 11) for g in groups] + [80]) + 16
    x0, x1 = label_w, WIDTH - 20

    def X(v):
        return x0 + (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (x1 - x0)

    svg = Svg()
    svg.text(12, 22, title, size=14, weight="bold")
    svg.text(12, 40, "Each bar: a quiver surface's median divided by the best peer's of its peer set "
             "(surface: ratio peer, at the bar's end); log scale, 1× = as fast as that peer.",
             size=11, fill="#555")
    y = legend(svg, [(n, colors[n]) for n in surfaces], 12, 62, WIDTH - 24)
    ticks = log_ticks(lo, hi)
    top = y + 8
    for v in ticks:                          # the axis on top
        svg.text(X(v), top, tick_label(v), size=10, anchor="middle", fill="#555")
    y = top + 8
    plot_top = y
    bar_h, gap, pad = 11, 3, 8
    rows = []
    for label, bars in groups:
        h = max(len(bars), 1) * (bar_h + gap) - gap + 2 * pad
        rows.append((label, bars, y, h))
        y += h
    plot_bottom = y
    for v in ticks:
        svg.line(X(v), plot_top, X(v), plot_bottom, GRID)
    for i, (label, bars, gy, h) in enumerate(rows):
        if i:
            svg.line(8, gy, x1, gy, "#c9ced4")
        svg.text(8, gy + h / 2 + 4, label, size=11)
        if not bars:
            svg.text(X(1.0) + 6, gy + h / 2 + 4, "no ratio (no peer ran, or no quiver row)",
                     size=10, fill="#888")
        for j, (name, v, peer) in enumerate(bars):
            by = gy + pad + j * (bar_h + gap)
            xa, xb = sorted((X(1.0), X(max(min(v, hi), lo))))
            svg.rect(xa, by, xb - xa, bar_h, colors[name], tip=f"{name}: {fmt_ratio(v)} {peer}")
            label_text = f"{name}: {fmt_ratio(v)} {peer}"
            if v >= 1:
                svg.text(xb + 4, by + bar_h - 2, label_text, size=10)
            else:
                svg.text(xa - 4, by + bar_h - 2, label_text, size=10, anchor="end")
    svg.line(X(1.0), plot_top - 4, X(1.0), plot_bottom, "#b22222", 1.5)
    for v in ticks:                          # and at the bottom
        svg.text(X(v), plot_bottom + 14, tick_label(v), size=10, anchor="middle", fill="#555")
    return svg.doc(WIDTH, plot_bottom + 24)


def nice_max(v):
    """An axis end >= v on a 1-2-5 grid, and its tick step (about 5 ticks)."""
    if v <= 0:
        return 1.0, 0.2
    step = snap_up(v / 5)
    return math.ceil(v / step) * step, step


def rates_chart(cells, colors, title):
    """One panel per cell: a bar per client at its median, a min–max error bar, the value."""
    svg = Svg()
    svg.text(12, 22, title, size=14, weight="bold")
    svg.text(12, 40, "Bars: the median over the rounds; whiskers: min–max. Quiver rows in colour "
             "(bold names), peers grey, h2load dark.", size=11, fill="#555")
    y = 56
    names = [r["client"] for c in cells for r in c["rows"]]
    label_w = max([text_width(n, 11) for n in names] + [80]) + 24
    x0, x1 = label_w, WIDTH - 90
    bar_h, gap = 12, 4
    for c in cells:
        rows = [r for r in c["rows"] if r["status"] not in ("n/a", "not built")]
        unit = "MB/s" if c["kind"] in ("stream", "masque") else "req/s"
        y += 18
        svg.text(8, y, f"{c['title']} — {unit}", size=12, weight="bold")
        y += 8
        good = [r for r in rows if r["status"] == "ok" and r.get("summary", {}).get("median") is not None]
        top = max([r["summary"]["max"] for r in good] + [0])
        end, step = nice_max(top)

        def X(v, end=end):
            return x0 + v / end * (x1 - x0)

        h = max(len(rows), 1) * (bar_h + gap) + 4
        k = 0
        while k * step <= end * 1.0001:
            svg.line(X(k * step), y, X(k * step), y + h, GRID)
            k += 1
        if not rows:
            svg.text(x0, y + 14, "no client ran this cell", size=10, fill="#888")
        for i, r in enumerate(rows):
            by = y + 2 + i * (bar_h + gap)
            quiver = r["role"] == "quiver"
            color = colors.get(r["client"], PALETTE[0]) if quiver else (
                CEILING if r["role"] == "ceiling" else PEER)
            svg.text(x0 - 6, by + bar_h - 2, r["client"], size=11, anchor="end",
                     weight="bold" if quiver else "normal")
            s = r.get("summary", {})
            if r not in good:
                svg.text(x0 + 4, by + bar_h - 2, "FAILED" if r["status"] in ("ok", "probe failed")
                         else r["status"], size=10, fill="#b22222")
                continue
            med, lo, hi = s["median"], s["min"], s["max"]
            svg.rect(x0, by, X(med) - x0, bar_h, color,
                     tip=f"{r['client']}: {fmt_value(med)} {unit} ({fmt_value(lo)}–{fmt_value(hi)})")
            mid = by + bar_h / 2
            svg.line(X(lo), mid, X(hi), mid, "#222", 1)
            svg.line(X(lo), mid - 4, X(lo), mid + 4, "#222", 1)
            svg.line(X(hi), mid - 4, X(hi), mid + 4, "#222", 1)
            svg.text(X(hi) + 5, by + bar_h - 2, fmt_value(med), size=10)
        y += h
        k = 0
        while k * step <= end * 1.0001:
            svg.text(X(k * step), y + 12, fmt_value(k * step) if k else "0", size=10,
                     anchor="middle", fill="#555")
            k += 1
        y += 18
    return svg.doc(WIDTH, y + 10)
