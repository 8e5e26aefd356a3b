"""A small hand-written SVG line plot with logarithmic axes (no plotting library needed)."""
import math
from xml.sax.saxutils import escape

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
DASHES = ["", "6,4", "", "6,4", "2,3", "2,3"]


def log_line_plot(series, path, title, x_label, y_label, width=720, height=440):
    """series: list of (name, [(x, y), ...]) with x, y > 0. Writes an SVG file at `path`."""
    points = [(x, y) for _, pts in series for x, y in pts if x > 0 and y > 0]
    if not points:
        return
    left, right, top, bottom = 70, 200, 40, 50
    pw, ph = width - left - right, height - top - bottom
    x0, x1 = math.log10(min(p[0] for p in points)), math.log10(max(p[0] for p in points))
    y0 = math.floor(math.log10(min(p[1] for p in points)))
    y1 = math.ceil(math.log10(max(p[1] for p in points)))
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1

    def sx(x):
        return left + (math.log10(x) - x0) / (x1 - x0) * pw

    def sy(y):
        return top + ph - (math.log10(y) - y0) / (y1 - y0) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left + pw / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>']
    for e in range(y0, y1 + 1):
        y = sy(10 ** e)
        label = f"{10 ** e:g}"
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for x in sorted({p[0] for p in points}):
        X = sx(x)
        out.append(f'<line x1="{X:.1f}" y1="{top}" x2="{X:.1f}" y2="{top + ph}" stroke="#eee"/>')
        out.append(f'<text x="{X:.1f}" y="{top + ph + 16}" text-anchor="middle">{x:,}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 10}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(16,{top + ph / 2}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    for i, (name, pts) in enumerate(series):
        pts = sorted((x, y) for x, y in pts if x > 0 and y > 0)
        if not pts:
            continue
        colour, dash = COLOURS[i % len(COLOURS)], DASHES[i % len(DASHES)]
        d = " ".join(f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for j, (x, y) in enumerate(pts))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        for x, y in pts:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
        ly = top + 10 + i * 20
        out.append(f'<line x1="{left + pw + 12}" y1="{ly}" x2="{left + pw + 40}" y2="{ly}" stroke="{colour}" '
                   f'stroke-width="2"{dash_attr}/>')
        out.append(f'<text x="{left + pw + 46}" y="{ly + 4}">{escape(name)}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
