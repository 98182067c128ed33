"""A tiny document model rendered twice: Markdown (report.md) and self-contained HTML (report.html).

Pipeline: report/build.py assembles blocks from analysis/ results and figures.py's PNGs ->
**to_markdown(), to_html()** here -> files in results/<run>/.

Both renderings come from the same blocks, so they say the same numbers. The HTML embeds
every figure as a base64 data: URI and carries its own CSS: it opens offline, without
JavaScript, and can be mailed as one file. Inline markup in text is limited to **bold** and
`code`; everything else is escaped.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass(frozen=True)
class Paragraph:
    text: str
    css: str = ""  # an HTML class: "pass", "fail", "note"


@dataclass(frozen=True)
class Table:
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric: Sequence[bool] = ()  # right-aligned columns; default: none


@dataclass(frozen=True)
class Figure:
    filename: str  # written next to report.md
    alt: str
    png: bytes = field(repr=False)
    caption: str = ""


@dataclass(frozen=True)
class Bullets:
    items: Sequence[str]


@dataclass(frozen=True)
class Details:
    """Collapsed in HTML (<details>, no script needed); plain blocks in Markdown."""

    summary: str
    blocks: Sequence[Block]
    open: bool = False


Block = Heading | Paragraph | Table | Figure | Bullets | Details


def slug(text: str) -> str:
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out or "x"


# -- Markdown ---------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> list[str]:
    numeric = list(table.numeric) + [False] * (len(table.columns) - len(table.numeric))
    lines = [
        "| " + " | ".join(_md_cell(c) for c in table.columns) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return lines


def _md_blocks(blocks: Sequence[Block]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Table):
            lines += _md_table(block) + [""]
        elif isinstance(block, Figure):
            lines += [f"![{block.alt}]({block.filename})", ""]
            if block.caption:
                lines += [f"*{block.caption}*", ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Details):
            lines += [f"**{block.summary}**", ""] + _md_blocks(block.blocks)
    return lines


def to_markdown(blocks: Sequence[Block]) -> str:
    lines = _md_blocks(blocks)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


# -- HTML -------------------------------------------------------------------------------------

CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 1150px; margin: 1.5em auto;
       padding: 0 1em; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #bbb; }
h3 { font-size: 1.1em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .88em; }
th, td { border: 1px solid #c8c8c8; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
div.scroll { overflow-x: auto; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f1f1f1; padding: 0 .25em; border-radius: 3px; font-size: .92em; }
figure { margin: 1em 0 1.5em; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; }
p.pass, p.fail { font-size: 1.15em; padding: .6em .9em; border-radius: 4px; }
p.pass { background: #e3f4e1; border-left: 6px solid #2e7d32; }
p.fail { background: #fbe4e4; border-left: 6px solid #c62828; }
p.note { color: #555; font-size: .9em; }
nav { background: #f6f7f9; border: 1px solid #ddd; padding: .4em 1em; font-size: .9em; }
nav a { margin-right: 1.1em; }
details { margin: .4em 0 1em; }
summary { cursor: pointer; color: #234; }
""".strip()


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def _html_table(table: Table) -> list[str]:
    numeric = list(table.numeric) + [False] * (len(table.columns) - len(table.numeric))
    cls = [' class="num"' if n else "" for n in numeric]
    out = [
        '<div class="scroll"><table>',
        "<thead><tr>"
        + "".join(f"<th{c}>{html.escape(str(h))}</th>" for c, h in zip(cls, table.columns))
        + "</tr></thead>",
        "<tbody>",
    ]
    for row in table.rows:
        out.append("<tr>" + "".join(f"<td{c}>{_inline(str(v))}</td>" for c, v in zip(cls, row)) + "</tr>")
    out += ["</tbody>", "</table></div>"]
    return out


def _html_blocks(blocks: Sequence[Block]) -> list[str]:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
            out.append(f"<h{block.level}{anchor}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            css = f' class="{block.css}"' if block.css else ""
            out.append(f"<p{css}>{_inline(block.text)}</p>")
        elif isinstance(block, Table):
            out += _html_table(block)
        elif isinstance(block, Figure):
            data = base64.b64encode(block.png).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.alt)}">')
            if block.caption:
                out.append(f"<figcaption>{_inline(block.caption)}</figcaption>")
            out.append("</figure>")
        elif isinstance(block, Bullets):
            out += ["<ul>"] + [f"<li>{_inline(item)}</li>" for item in block.items] + ["</ul>"]
        elif isinstance(block, Details):
            opened = " open" if block.open else ""
            out += [f"<details{opened}><summary>{_inline(block.summary)}</summary>"]
            out += _html_blocks(block.blocks) + ["</details>"]
    return out


def to_html(title: str, blocks: Sequence[Block]) -> str:
    """A complete HTML page; a table of contents of the level-2 headings follows the title."""
    toc = [b for b in blocks if isinstance(b, Heading) and b.level == 2 and b.anchor]
    nav = ""
    if toc:
        nav = "<nav>" + "".join(f'<a href="#{html.escape(h.anchor)}">{html.escape(h.text)}</a>' for h in toc) + "</nav>"
    first = next((i + 1 for i, b in enumerate(blocks) if isinstance(b, Heading) and b.level == 1), 0)
    body = "\n".join(_html_blocks(blocks[:first]) + ([nav] if nav else []) + _html_blocks(blocks[first:]))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )
