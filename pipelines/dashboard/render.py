"""HTML of the dashboard: pages made of sections, each a chart (a plotly figure) above the table behind it.

The pages are static files that open from `file://`: the figures are JSON specs in `<script type="application/json">`
tags, drawn by `dashboard.js` with `plotly.min.js`, both written beside the pages. Nothing is fetched from anywhere.
Every text from the warehouse is HTML-escaped. Page text is assembled with `string.Template` from the package's
`templates/page.html`, so the standard library is enough.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from typing import Any

NO_DATA = "no data yet"
"""What a section says when its marts are missing or empty (a warehouse not synced or modelled yet)."""

SUPPRESSED = "suppressed"
"""What a suppressed cell reads."""

ASSETS = ("dashboard.css", "dashboard.js")
"""The package's static files copied into the site (with plotly.min.js from the plotly package)."""


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, whether it is a number (right-aligned) and whether it is suppressed."""

    text: str
    numeric: bool = False
    suppressed: bool = False
    wrap: bool = False


@dataclass(frozen=True)
class Row:
    cells: Sequence[Cell]
    total: bool = False


@dataclass(frozen=True)
class Table:
    columns: Sequence[str]
    rows: Sequence[Row]


@dataclass(frozen=True)
class Chart:
    """A plotly figure: `data` (traces) and `layout`, as plotly.js takes them."""

    data: list[dict[str, Any]]
    layout: dict[str, Any]


@dataclass(frozen=True)
class Section:
    """A chart (if any) with the table behind it, its title, and the caption stating the metric's definition."""

    anchor: str
    title: str
    definition: str | None = None
    """The metric's definition in sql/README.md's words (inline `code` in backticks)."""
    note: str | None = None
    chart: Chart | None = None
    table: Table | None = None
    empty: str | None = None
    """Shown instead of chart and table: `NO_DATA`, or why nothing is shown."""
    chart_note: str | None = None
    """Shown instead of the chart when it has nothing to draw (every value suppressed)."""


@dataclass(frozen=True)
class Heading:
    text: str
    anchor: str


@dataclass(frozen=True)
class Choice:
    key: str
    label: str
    parts: Sequence[Section | Heading]


@dataclass(frozen=True)
class Chooser:
    """A select box that shows one of several blocks (a student group)."""

    anchor: str
    label: str
    choices: Sequence[Choice]


Part = Section | Heading | Chooser


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    intro: str
    """HTML."""
    parts: Sequence[Part] = field(default_factory=list)

    @property
    def file_name(self) -> str:
        return f"{self.slug}.html"


@dataclass
class Renderer:
    """Turns pages into HTML; numbers the charts of a page."""

    district: str
    footer: str
    pages: Sequence[tuple[str, str]]
    """(file name, title) of every page, for the navigation bar."""
    _charts: int = 0

    def page(self, page: Page) -> str:
        self._charts = 0
        body = "\n".join(self.part(part) for part in page.parts)
        # plotly.min.js (4.8 MB, 2 s to parse) only where there is a chart to draw
        scripts = ['<script src="plotly.min.js"></script>'] if self._charts else []
        scripts.append('<script src="dashboard.js"></script>')
        return _template("page.html").substitute(
            scripts="\n".join(scripts),
            title=esc(page.title),
            district=esc(self.district),
            slug=esc(page.slug),
            nav=self.nav(page.file_name),
            intro=page.intro,
            body=body,
            footer=esc(self.footer),
        )

    def nav(self, current: str) -> str:
        links = []
        for file_name, title in self.pages:
            here = ' aria-current="page"' if file_name == current else ""
            links.append(f'<a href="{esc(file_name)}"{here}>{esc(title)}</a>')
        return "".join(links)

    def part(self, part: Part) -> str:
        if isinstance(part, Heading):
            return f'<h2 id="{esc(part.anchor)}">{esc(part.text)}</h2>'
        if isinstance(part, Chooser):
            return self.chooser(part)
        return self.section(part)

    def chooser(self, chooser: Chooser) -> str:
        options = "".join(f'<option value="{esc(c.key)}">{esc(c.label)}</option>' for c in chooser.choices)
        bar = (
            f'<div class="chooser-bar"><label>{esc(chooser.label)} <select class="chooser" id="{esc(chooser.anchor)}"'
            f' data-chooser="{esc(chooser.anchor)}">{options}</select></label></div>'
        )
        blocks = [
            f'<div class="choice" data-chooser="{esc(chooser.anchor)}" data-choice="{esc(choice.key)}">'
            + "\n".join(self.part(part) for part in choice.parts)
            + "</div>"
            for choice in chooser.choices
        ]
        return bar + "\n" + "\n".join(blocks)

    def section(self, section: Section) -> str:
        out = [f'<section class="block" id="{esc(section.anchor)}">', f"<h3>{esc(section.title)}</h3>"]
        caption = []
        if section.definition:
            definition = section.definition if section.definition.endswith(".") else section.definition + "."
            caption.append(f'<span class="definition">{inline(definition)}</span>')
        if section.note:
            caption.append(f'<span class="more">{inline(section.note)}</span>')
        if caption:
            out.append(f'<p class="caption">{" ".join(caption)}</p>')
        if section.empty is not None:
            out.append(f'<p class="no-data">{esc(section.empty)}</p>')
        else:
            if section.chart is not None:
                out.append(self.chart(section.chart))
            elif section.chart_note:
                out.append(f'<p class="note">{esc(section.chart_note)}</p>')
            if section.table is not None:
                out.append(table_html(section.table))
        out.append("</section>")
        return "\n".join(out)

    def chart(self, chart: Chart) -> str:
        self._charts += 1
        chart_id = f"chart-{self._charts}"
        spec = json.dumps({"data": chart.data, "layout": chart.layout}, default=str, separators=(",", ":"))
        spec = spec.replace("</", "<\\/")  # a title holding "</script>" cannot end the tag
        return (
            f'<div class="chart" id="{chart_id}"></div>\n'
            f'<script type="application/json" id="{chart_id}-spec">{spec}</script>'
        )


def table_html(table: Table) -> str:
    head = "".join(f'<th scope="col">{esc(column)}</th>' for column in table.columns)
    body = []
    for row in table.rows:
        cells = "".join(cell_html(cell) for cell in row.cells)
        body.append(f'<tr class="total">{cells}</tr>' if row.total else f"<tr>{cells}</tr>")
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def cell_html(cell: Cell) -> str:
    classes = []
    if cell.suppressed:
        classes.append("suppressed")
    elif cell.numeric:
        classes.append("num")
    if cell.wrap:
        classes.append("wrap")
    attribute = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{attribute}>{esc(cell.text)}</td>"


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def inline(text: str) -> str:
    """Escaped text with `code` spans (the README's notation for column names and formulas)."""
    pieces = esc(text).split("`")
    return "".join(f"<code>{piece}</code>" if index % 2 else piece for index, piece in enumerate(pieces))


def asset(name: str) -> str:
    """A static file of the package (templates/), as text."""
    return (resources.files("illuminate_sync.pipelines.dashboard") / "templates" / name).read_text(encoding="utf-8")


def _template(name: str) -> Template:
    return Template(asset(name))
