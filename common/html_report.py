"""The parts both HTML reports are made of (an evaluation's results.html, a comparison's compare.html): the
page with its inline style, tables, video cards and key-value tables. Static files: no script, nothing
fetched; videos are referenced by paths relative to the page, so a folder keeps working when moved whole.

    html = page("MT10: run", [Section("tasks", "Tasks", table(["task", "success"], rows))], subtitle="...")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d1d1f; background: #fff; }
header { padding: 18px 28px 10px; border-bottom: 1px solid #ddd; background: #f7f7f9; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: #444; font-size: 14px; }
nav { margin-top: 8px; font-size: 13px; }
nav a { margin-right: 14px; color: #0060a0; text-decoration: none; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { margin-top: 22px; }
h2 { font-size: 18px; border-bottom: 1px solid #eee; padding-bottom: 4px; }
p.note { color: #555; font-size: 13px; max-width: 980px; }
.headline { font-size: 28px; font-weight: 600; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 12px; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f2f2f4; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 2px solid #bbb; }
.higher { color: #006d2c; font-weight: 600; } .lower { color: #b30000; font-weight: 600; }
.same { color: #555; }
.warn { background: #fff4e0; border-left: 4px solid #e69f00; padding: 6px 10px; font-size: 13px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.videos { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 12px; }
figure.video { margin: 0; border: 1px solid #ddd; border-radius: 4px; padding: 6px; background: #fafafa; }
figure.video video { width: 100%; height: auto; display: block; background: #000; }
figure.video figcaption { font-size: 12px; margin-top: 4px; overflow-wrap: anywhere; }
.success { color: #006d2c; } .failure { color: #b30000; }
table.videos-by-task video { width: 200px; height: auto; display: block; background: #000; }
table.videos-by-task td { font-size: 12px; }
details summary { cursor: pointer; font-size: 14px; margin: 6px 0; }
code { font-size: 12px; background: #f2f2f4; padding: 1px 4px; border-radius: 3px; word-break: break-all; }
"""


class Raw(str):
    """Markup to put into a page as it is (everything else is escaped)."""


def cell(value: Any) -> str:
    return value if isinstance(value, Raw) else escape(str(value))


@dataclass
class Section:
    id: str  # anchor, also the table id prefix
    title: str
    body: str  # HTML


def page(title: str, sections: Sequence[Section], subtitle: Iterable[str] = ()) -> str:
    """A whole HTML document: a header with links to the sections, then the sections."""
    nav = "".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in sections)
    lines = "".join(f"<p>{cell(line)}</p>" for line in subtitle)
    body = "".join(f'<section id="{escape(s.id)}"><h2>{escape(s.title)}</h2>{s.body}</section>' for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{escape(title)}</h1>{lines}<nav>{nav}</nav></header><main>{body}</main></body></html>\n")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], table_id: str, numeric: Iterable[int] = (),
          total_rows: Iterable[int] = (), css_class: str | None = None) -> str:
    """An HTML table; columns in `numeric` are right-aligned, rows in `total_rows` set off as totals."""
    numeric, totals = set(numeric), set(total_rows)

    def align(column: int) -> str:
        return ' class="num"' if column in numeric else ""

    head = "".join(f"<th{align(i)}>{cell(h)}</th>" for i, h in enumerate(headers))
    body = "".join(("<tr class=\"total\">" if r in totals else "<tr>")
                   + "".join(f"<td{align(i)}>{cell(v)}</td>" for i, v in enumerate(row)) + "</tr>"
                   for r, row in enumerate(rows))
    css = f' class="{escape(css_class)}"' if css_class else ""
    return f'<table id="{escape(table_id)}"{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def video(src: str, label: str) -> str:
    """A video element for an mp4 at `src` (relative to the page): loads only its header until played."""
    return (f'<video src="{escape(src)}" controls muted loop playsinline preload="metadata" '
            f'title="{escape(label)}"></video>')


def video_card(src: str, caption: str, outcome: str | None = None) -> str:
    """A video with a caption; `outcome` ("success" / "failure") colours the caption."""
    css = f' class="{escape(outcome)}"' if outcome else ""
    return f'<figure class="video">{video(src, caption)}<figcaption{css}>{escape(caption)}</figcaption></figure>'


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts as {"a.b": "value"}; lists of scalars joined, longer structures shortened."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        elif isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
            flat[name] = ", ".join(str(v) for v in value)
        else:
            text = str(value)
            flat[name] = text if len(text) <= 300 else text[:300] + " ..."
    return flat


def key_value_table(data: Mapping[str, Any], table_id: str) -> str:
    return table(["key", "value"], [[k, Raw(f"<code>{escape(v)}</code>")] for k, v in flatten(data).items()],
                 table_id)


def rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def interval(bounds: Sequence[float] | None, digits: int = 2) -> str:
    return "n/a" if bounds is None else f"[{bounds[0]:.{digits}f}, {bounds[1]:.{digits}f}]"
