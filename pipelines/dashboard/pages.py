"""What each page shows: the query results arranged into sections (chart, table, caption), with suppression applied.

Each page function takes query results (`queries.py`) and the build's `Context`, and returns a `render.Page`; no SQL
here, no HTML either. Suppression runs once per table family (all the tables of a year that share totals), so that a
cell hidden in one table is not given away by another that repeats its total. Charts take their values from the
same cells as the tables and get None where a cell is suppressed, so plotly draws nothing there.

Captions quote the metric definitions of `sql/README.md` word for word (`tests/test_dashboard_pages.py` checks it).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import plotly.graph_objects as go

from illuminate_sync.pipelines.dashboard.queries import (
    AbsenceBin,
    AbsentStudent,
    Assessment,
    BandCount,
    BandLabel,
    ChronicCell,
    EnrollmentCell,
    MonthlyChronic,
    ProficiencyCell,
    Program,
    Settings,
    SyncRun,
    SyncTable,
    WeeklyMoves,
)
from illuminate_sync.pipelines.dashboard.render import (
    NO_DATA,
    SUPPRESSED,
    Cell,
    Chart,
    Choice,
    Chooser,
    Heading,
    Page,
    Part,
    Row,
    Section,
    Table,
    esc,
)
from illuminate_sync.pipelines.dashboard.suppression import Group, grid_groups, suppress

# Definitions, in sql/README.md's words.
CHRONIC_DEFINITION = (
    "`chronic_absence_rate = chronically_absent / students`; `students` (enrolled at least `chronic_absence_min_days`:"
    " the denominator); `is_chronically_absent = days_enrolled >= chronic_absence_min_days and absence_rate >="
    " chronic_absence_threshold` (settings, default 10 days and 10%)"
)
ABSENCE_RATE_DEFINITION = "`absence_rate = days_absent / days_enrolled`; `days_absent = days_enrolled - days_present`"
PROFICIENCY_DEFINITION = (
    "`proficiency_rate = students_proficient / students_tested`; From the latest attempts, at the school and grade of"
    " the day taken; the band is a mastery band (`is_mastery`) of the assessment's band set (the API's `mastered`"
    " flag only when the View document is missing)"
)
BANDS_DEFINITION = "(students per band level)"
PROGRAMS_DEFINITION = (
    "`programs`: codes of ProgramCode records whose participation (else eligibility) period covers today"
)
SPECIAL_ED_DEFINITION = "special education (`is_special_ed`, disability, exit date)"
ENROLLED_DEFINITION = (
    "`enrolled`: students with a span covering the snapshot date; `snapshot_date = least(today, year_end_date)`: today"
    " for the current year, the year's last regular-session day for closed years."
)
MOVES_DEFINITION = (
    "`entries`: spans started on or before it; `exits`: spans that ended before the year's last day, on or before the"
    " snapshot date (transfers, withdrawals)"
)
README_QUOTES = (
    CHRONIC_DEFINITION,
    ABSENCE_RATE_DEFINITION,
    PROFICIENCY_DEFINITION,
    BANDS_DEFINITION,
    PROGRAMS_DEFINITION,
    SPECIAL_ED_DEFINITION,
    ENROLLED_DEFINITION,
    MOVES_DEFINITION,
)
"""Every caption definition; each `;`-separated piece is a phrase of sql/README.md."""

DISTRICT = "district"
ALL = "all"
ABSENCE_BINS = 11
"""5-point absence-rate bins, 0-5 % to 45-50 %, then 50 % and more."""


@dataclass(frozen=True)
class Context:
    """What every page needs besides its data."""

    min_cell_size: int
    settings: Settings | None
    names_kept: bool

    @property
    def suppression_note(self) -> str:
        return (
            f'Cells about fewer than {self.min_cell_size} students read "{SUPPRESSED}", and so does a second cell'
            " wherever a suppressed one could be worked out from a total; charts leave them out."
        )

    @property
    def all_suppressed(self) -> str:
        return (
            f"No chart: every value is suppressed (fewer than {self.min_cell_size} students) or zero; the table shows"
            " which."
        )


# ------------------------------------------------------------------------------------------------------ helpers
def year_label(year: int) -> str:
    """Academic years are named by their ending year: 2027 is 2026-27."""
    return f"{year - 1}-{year % 100:02d}"


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def count_cell(count: int | None, hidden: bool) -> Cell:
    if hidden:
        return Cell(SUPPRESSED, numeric=True, suppressed=True)
    return Cell("—" if count is None else f"{count:,}", numeric=True)


def rate_cell(numerator: int, denominator: int | None, hidden: bool) -> Cell:
    """A rate and its denominator: `12.5% of 24`."""
    if hidden:
        return Cell(SUPPRESSED, numeric=True, suppressed=True)
    if not denominator:
        return Cell("—", numeric=True)
    return Cell(f"{percent(numerator / denominator)} of {denominator:,}", numeric=True)


def shown_rate(numerator: int, denominator: int | None, hidden: bool) -> float | None:
    """A chart's value: None where the cell is suppressed or has no students."""
    if hidden or not denominator:
        return None
    return numerator / denominator


def shown_count(count: int | None, hidden: bool) -> int | None:
    return None if hidden else count


def text(value: str) -> Cell:
    return Cell(value)


def short(title: str, limit: int = 48) -> str:
    return title if len(title) <= limit else title[: limit - 1] + "…"


def bar_chart(
    title: str,
    categories: Sequence[str],
    traces: Sequence[tuple[str, Sequence[float | int | None]]],
    axis_title: str,
    rate: bool = False,
    stacked: bool = False,
    horizontal: bool = False,
) -> Chart | None:
    """Bars per category, one trace per series; None when no bar would show (every value suppressed, missing or 0)."""
    if not drawable(traces):
        return None
    data = []
    for name, values in traces:
        trace: dict[str, Any] = {"type": "bar", "name": name}
        if horizontal:
            trace |= {"y": list(categories), "x": list(values), "orientation": "h"}
        else:
            trace |= {"x": list(categories), "y": list(values)}
        data.append(trace)
    value_axis: dict[str, Any] = {"title": {"text": axis_title}, "rangemode": "tozero"}
    if rate:
        value_axis["tickformat"] = ".0%"
    layout: dict[str, Any] = {
        "title": {"text": title},
        "barmode": "stack" if stacked else "group",
        "legend": {"orientation": "h", "y": -0.2},
        "margin": {"t": 50, "l": 60, "r": 20, "b": 40},
        "height": max(380, 26 * len(categories) + 120) if horizontal else 420,
        "xaxis" if not horizontal else "yaxis": {"type": "category", "automargin": True},
        "yaxis" if not horizontal else "xaxis": value_axis,
    }
    if horizontal:
        layout["yaxis"]["autorange"] = "reversed"
    return checked(Chart(data, layout))


def line_chart(
    title: str, categories: Sequence[str], traces: Sequence[tuple[str, Sequence[float | None]]], axis_title: str
) -> Chart | None:
    if not drawable(traces):
        return None
    data = [
        {"type": "scatter", "mode": "lines+markers", "name": name, "x": list(categories), "y": list(values)}
        for name, values in traces
    ]
    layout = {
        "title": {"text": title},
        "legend": {"orientation": "h", "y": -0.2},
        "margin": {"t": 50, "l": 60, "r": 20, "b": 40},
        "height": 420,
        "xaxis": {"type": "category"},
        "yaxis": {"title": {"text": axis_title}, "tickformat": ".0%", "rangemode": "tozero"},
    }
    return checked(Chart(data, layout))


def drawable(traces: Sequence[tuple[str, Sequence[float | int | None]]]) -> bool:
    """Whether a chart would draw a mark: a value that is neither suppressed (None) nor 0."""
    return any(value for _, values in traces for value in values)


def checked(chart: Chart) -> Chart:
    """The figure validated by plotly's Python classes (a misspelt attribute fails the build, not the page)."""
    go.Figure(data=chart.data, layout=chart.layout)
    return chart


def no_data(anchor: str, title: str, definition: str | None = None, message: str = NO_DATA) -> Section:
    return Section(anchor, title, definition=definition, empty=message)


def years_of(items: Iterable[Any]) -> list[int]:
    """The academic years present, newest first."""
    return sorted({item.academic_year for item in items}, reverse=True)


# ------------------------------------------------------------------------------------------------------ attendance
def attendance_page(
    context: Context,
    chronic: Sequence[ChronicCell],
    monthly: Sequence[MonthlyChronic],
    bins: Sequence[AbsenceBin],
    students: Sequence[AbsentStudent],
) -> Page:
    settings = context.settings
    rule = (
        f"Here: absent on at least {percent(settings.chronic_absence_threshold)} of the days enrolled, counted for"
        f" students enrolled at least {settings.chronic_absence_min_days} days (analytics.settings)."
        if settings
        else ""
    )
    intro = "<p>Chronic absenteeism per school and grade, its trend through the year, and how absence rates spread.</p>"
    parts: list[Part] = []
    years = sorted(set(years_of(chronic)) | set(years_of(monthly)) | set(years_of(bins)), reverse=True)
    if not years:
        parts += [
            no_data("attendance-chronic", "Chronic absenteeism by school and grade", CHRONIC_DEFINITION),
            no_data("attendance-monthly", "Chronic absenteeism by month", CHRONIC_DEFINITION),
            no_data("attendance-distribution", "Distribution of absence rates", ABSENCE_RATE_DEFINITION),
            no_data("attendance-students", "Students over the threshold"),
        ]
    for year in years:
        label = year_label(year)
        parts.append(Heading(f"{label} school year", f"attendance-{year}"))
        parts.append(chronic_section(context, year, [c for c in chronic if c.academic_year == year], rule))
        parts.append(monthly_section(context, year, [m for m in monthly if m.academic_year == year], rule))
        parts.append(distribution_section(context, year, [b for b in bins if b.academic_year == year]))
        parts.append(students_section(context, year, [s for s in students if s.academic_year == year]))
    return Page("attendance", "Attendance", intro, parts)


def chronic_section(context: Context, year: int, cells: Sequence[ChronicCell], rule: str) -> Section:
    anchor, title = f"attendance-{year}-chronic", f"Chronic absenteeism by school and grade, {year_label(year)}"
    if not cells:
        return no_data(anchor, title, CHRONIC_DEFINITION)
    by_key = {_chronic_key(cell): cell for cell in cells}
    schools = sorted({(cell.site_name, cell.site_id) for cell in cells if cell.site_id is not None})
    grades = sorted({(cell.grade_order, cell.grade, cell.grade_level_id) for cell in cells if cell.grade_level_id})
    school_keys = [site_id for _, site_id in schools]
    grade_keys = [grade_id for _, _, grade_id in grades]
    hidden = suppress(
        {key: cell.students for key, cell in by_key.items()},
        grid_groups(school_keys, grade_keys, DISTRICT, ALL),
        context.min_cell_size,
    )
    columns = [*[grade for _, grade, _ in grades], "All grades"]
    rows_of = [*[(name, site_id) for name, site_id in schools], ("District", DISTRICT)]

    def cell_of(site: Hashable, grade: Hashable) -> ChronicCell | None:
        return by_key.get((site, grade))

    table_rows = []
    traces = []
    for name, site in rows_of:
        values: list[float | None] = []
        cells_out = [text(name)]
        for grade in [*grade_keys, ALL]:
            cell = cell_of(site, grade)
            if cell is None:
                cells_out.append(Cell("—", numeric=True))
                values.append(None)
                continue
            hide = (site, grade) in hidden
            cells_out.append(rate_cell(cell.chronically_absent, cell.students, hide))
            values.append(shown_rate(cell.chronically_absent, cell.students, hide))
        table_rows.append(Row(cells_out, total=site == DISTRICT))
        traces.append((name, values))
    chart = bar_chart(f"Chronic absence rate, {year_label(year)}", columns, traces, "chronically absent", rate=True)
    return Section(
        anchor,
        title,
        definition=CHRONIC_DEFINITION,
        note=f"{rule} Cells: rate of the students counted. {context.suppression_note}",
        chart=chart,
        chart_note=context.all_suppressed if chart is None else None,
        table=Table(["School", *columns], table_rows),
    )


def _chronic_key(cell: ChronicCell) -> tuple[Hashable, Hashable]:
    return (
        DISTRICT if cell.site_id is None else cell.site_id,
        ALL if cell.grade_level_id is None else cell.grade_level_id,
    )


def monthly_section(context: Context, year: int, cells: Sequence[MonthlyChronic], rule: str) -> Section:
    anchor, title = f"attendance-{year}-monthly", f"Chronic absenteeism by month, {year_label(year)}"
    if not cells:
        return no_data(anchor, title, CHRONIC_DEFINITION)
    months = sorted({cell.month for cell in cells})
    scopes = sorted({(cell.site_name, cell.site_id) for cell in cells if cell.site_id is not None})
    scopes += [("No school", -1)] if any(c.site_id == -1 for c in cells) else []
    scopes = list(dict.fromkeys(scopes))
    by_key = {(DISTRICT if cell.site_id is None else cell.site_id, cell.month): cell for cell in cells}
    groups = [Group((DISTRICT, month), tuple((site, month) for _, site in scopes)) for month in months]
    hidden = suppress({key: cell.students for key, cell in by_key.items()}, groups, context.min_cell_size)
    columns = [*[name for name, _ in scopes], "District"]
    series: dict[str, list[float | None]] = {name: [] for name in columns}
    table_rows = []
    for month in months:
        cells_out = [text(month.strftime("%B %Y"))]
        for name, site in [*scopes, ("District", DISTRICT)]:
            cell = by_key.get((site, month))
            if cell is None:
                cells_out.append(Cell("—", numeric=True))
                series[name].append(None)
                continue
            hide = (site, month) in hidden
            cells_out.append(rate_cell(cell.chronically_absent, cell.students, hide))
            series[name].append(shown_rate(cell.chronically_absent, cell.students, hide))
        table_rows.append(Row(cells_out))
    chart = line_chart(
        f"Chronic absence rate, year to date, {year_label(year)}",
        [month.strftime("%Y-%m") for month in months],
        list(series.items()),
        "chronically absent",
    )
    return Section(
        anchor,
        title,
        definition=CHRONIC_DEFINITION,
        note=(
            f"{rule} Each month: the rule applied to the days of membership from the start of the year to the"
            f" month's end, per school and district-wide. {context.suppression_note}"
        ),
        chart=chart,
        chart_note=context.all_suppressed if chart is None else None,
        table=Table(["Month", *columns], table_rows),
    )


def bin_label(index: int) -> str:
    return "50% or more" if index == ABSENCE_BINS - 1 else f"{5 * index}–{5 * (index + 1)}%"


def distribution_section(context: Context, year: int, bins: Sequence[AbsenceBin]) -> Section:
    anchor, title = f"attendance-{year}-distribution", f"Distribution of absence rates, {year_label(year)}"
    if not bins:
        return no_data(anchor, title, ABSENCE_RATE_DEFINITION)
    counts: dict[Hashable, int] = {index: 0 for index in range(ABSENCE_BINS)}
    for item in bins:
        counts[min(item.bin, ABSENCE_BINS - 1)] += item.students
    counts[ALL] = sum(counts.values())
    hidden = suppress(counts, [Group(ALL, tuple(range(ABSENCE_BINS)))], context.min_cell_size)
    labels = [bin_label(index) for index in range(ABSENCE_BINS)]
    rows = [Row([text(labels[index]), count_cell(counts[index], index in hidden)]) for index in range(ABSENCE_BINS)]
    rows.append(Row([text("All students counted"), count_cell(counts[ALL], ALL in hidden)], total=True))
    values = [shown_count(counts[index], index in hidden) for index in range(ABSENCE_BINS)]
    chart = bar_chart(f"Students by absence rate, {year_label(year)}", labels, [("students", values)], "students")
    min_days = context.settings.chronic_absence_min_days if context.settings else "the minimum"
    return Section(
        anchor,
        title,
        definition=ABSENCE_RATE_DEFINITION,
        note=(
            f"District-wide (all of a student's days across schools), students enrolled at least {min_days} days,"
            f" in 5-point bins. {context.suppression_note}"
        ),
        chart=chart,
        chart_note=context.all_suppressed if chart is None else None,
        table=Table(["Absence rate", "Students"], rows),
    )


def students_section(context: Context, year: int, students: Sequence[AbsentStudent]) -> Section:
    anchor, title = f"attendance-{year}-students", f"Students over the threshold, {year_label(year)}"
    if not context.names_kept:
        return Section(
            anchor,
            title,
            empty=(
                "Not listed: this warehouse holds no student names (it was loaded with --pii hash or --pii exclude),"
                " so the dashboard lists no students."
            ),
        )
    if not students:
        return no_data(anchor, title, message=f"{NO_DATA}: no student is chronically absent in {year_label(year)}.")
    rows = [
        Row(
            [
                text(", ".join(part for part in (student.last_name, student.first_name) if part) or "(no name)"),
                text(student.site_name or "not enrolled today"),
                text(student.grade or "?"),
                count_cell(student.days_enrolled, False),
                count_cell(student.days_absent, False),
                Cell(percent(student.days_absent / student.days_enrolled) if student.days_enrolled else "—", True),
            ]
        )
        for student in students
    ]
    return Section(
        anchor,
        title,
        note=(
            "Chronically absent district-wide (`is_chronically_absent` on the student's district row), highest absence"
            " rate first; school: where the student is enrolled today. This list names students: share it only with"
            " staff who may see their records."
        ),
        table=Table(["Student", "School today", "Grade", "Days enrolled", "Days absent", "Absence rate"], rows),
    )


# ------------------------------------------------------------------------------------------------------ assessments
@dataclass(frozen=True)
class StudentGroup:
    key: str
    label: str
    outside: str
    definition: str
    code: str | None
    """The program code, or None for special education."""

    def contains(self, is_special_ed: bool, programs: frozenset[str]) -> bool:
        return is_special_ed if self.code is None else self.code in programs


def student_groups(programs: Sequence[Program]) -> list[StudentGroup]:
    groups = [
        StudentGroup("sped", "Special education", "Not in special education", SPECIAL_ED_DEFINITION, None),
    ]
    for program in sorted(programs, key=lambda item: item.code):
        name = f"Program {program.code}" + (f" ({program.description})" if program.description else "")
        groups.append(
            StudentGroup(
                f"program-{program.code}", name, f"Not in program {program.code}", PROGRAMS_DEFINITION, program.code
            )
        )
    return groups


@dataclass
class AssessmentFigures:
    """Counts of one year's assessments, keyed for suppression: `("tested", who, aid)` students tested (who: "all",
    "<group>:in", "<group>:out"), `("proficient", who, aid)` (not a cell: shown inside the tested cell's rate),
    `("band", who, aid, level)` students per band, `("cell", aid, site_id, grade_level_id)` per school and grade."""

    counts: dict[Hashable, int]
    proficient: dict[Hashable, int]
    groups: list[Group[Hashable]]

    def hidden(self, min_cell_size: int) -> frozenset[Hashable]:
        return suppress(self.counts, self.groups, min_cell_size)


def assessment_figures(
    assessments: Sequence[Assessment],
    cells: Sequence[ProficiencyCell],
    bands: Sequence[BandCount],
    labels: Sequence[BandLabel],
    groups: Sequence[StudentGroup],
) -> AssessmentFigures:
    ids = {assessment.assessment_id for assessment in assessments}
    counts: dict[Hashable, int] = {}
    proficient: dict[Hashable, int] = {}
    band_keys: dict[tuple[str, int], dict[Hashable, None]] = {}  # (who, assessment) -> its band cells, in order
    cell_keys: dict[int, list[Hashable]] = {}
    for band in bands:
        if band.assessment_id not in ids:
            continue
        programs = frozenset(code.strip() for code in (band.programs or "").split(",") if code.strip())
        who = ["all"] + [f"{g.key}:{'in' if g.contains(band.is_special_ed, programs) else 'out'}" for g in groups]
        for name in who:
            tested = ("tested", name, band.assessment_id)
            counts[tested] = counts.get(tested, 0) + band.students
            proficient[tested] = proficient.get(tested, 0) + band.proficient
            if name == "all" or name.endswith(":in"):
                key = ("band", name, band.assessment_id, band.level)
                counts[key] = counts.get(key, 0) + band.students
                band_keys.setdefault((name, band.assessment_id), {})[key] = None
    for cell in cells:
        if cell.assessment_id in ids:
            key = ("cell", cell.assessment_id, cell.site_id, cell.grade_level_id)
            counts[key] = cell.students_tested
            proficient[key] = cell.students_proficient
            cell_keys.setdefault(cell.assessment_id, []).append(key)
    mastery = {(label.assessment_id, label.level) for label in labels if label.is_mastery}
    total_groups: list[Group[Hashable]] = []
    for aid in sorted(ids):
        total = ("tested", "all", aid)
        total_groups.append(Group(total, tuple(cell_keys.get(aid, []))))
        for who in ["all", *[f"{g.key}:in" for g in groups]]:
            keys = tuple(band_keys.get((who, aid), {}))
            total_groups.append(Group(("tested", who, aid), keys))
            mastery_keys = tuple(k for k in keys if (aid, k[3]) in mastery)  # type: ignore[index]
            if mastery_keys:
                total_groups.append(Group(("tested", who, aid), mastery_keys))
        for group in groups:
            total_groups.append(Group(total, (("tested", f"{group.key}:in", aid), ("tested", f"{group.key}:out", aid))))
    return AssessmentFigures(counts, proficient, total_groups)


def assessments_page(
    context: Context,
    assessments: Sequence[Assessment],
    cells: Sequence[ProficiencyCell],
    bands: Sequence[BandCount],
    labels: Sequence[BandLabel],
    programs: Sequence[Program],
) -> Page:
    intro = (
        "<p>Proficiency per assessment, school and grade, the spread of students over performance bands, and both"
        " for a student group.</p>"
    )
    groups = student_groups(programs)
    tested_ids = {band.assessment_id for band in bands}
    parts: list[Part] = []
    years = years_of([a for a in assessments if a.assessment_id in tested_ids])
    if not years:
        parts += [
            no_data("assessments-proficiency", "Proficiency by assessment, school and grade", PROFICIENCY_DEFINITION),
            no_data("assessments-bands", "Performance-band distribution", BANDS_DEFINITION),
            no_data("assessments-groups", "Student groups", PROGRAMS_DEFINITION),
        ]
    band_names = {(label.assessment_id, label.level): label.label for label in labels}
    for year in years:
        of_year = sorted(
            (a for a in assessments if a.academic_year == year and a.assessment_id in tested_ids),
            key=lambda a: (a.title, a.assessment_id),
        )
        ids = {a.assessment_id for a in of_year}
        year_cells = [cell for cell in cells if cell.assessment_id in ids]
        figures = assessment_figures(of_year, year_cells, bands, labels, groups)
        hidden = figures.hidden(context.min_cell_size)
        parts.append(Heading(f"{year_label(year)} school year", f"assessments-{year}"))
        parts.append(proficiency_section(context, year, of_year, year_cells, figures, hidden))
        parts.append(bands_section(context, year, of_year, figures, hidden, band_names, "all", None))
        parts.append(
            Chooser(
                f"assessments-{year}-group",
                "Student group",
                [
                    Choice(
                        group.key,
                        group.label,
                        [
                            group_proficiency_section(context, year, of_year, figures, hidden, group),
                            bands_section(
                                context, year, of_year, figures, hidden, band_names, f"{group.key}:in", group
                            ),
                        ],
                    )
                    for group in groups
                ],
            )
        )
    return Page("assessments", "Assessments", intro, parts)


def proficiency_section(
    context: Context,
    year: int,
    assessments: Sequence[Assessment],
    cells: Sequence[ProficiencyCell],
    figures: AssessmentFigures,
    hidden: frozenset[Hashable],
) -> Section:
    anchor = f"assessments-{year}-proficiency"
    title = f"Proficiency by assessment, school and grade, {year_label(year)}"
    rows: list[Row] = []
    data: list[dict[str, Any]] = []
    buttons: list[dict[str, Any]] = []
    cells_of: dict[int, list[ProficiencyCell]] = {}
    for cell in cells:
        cells_of.setdefault(cell.assessment_id, []).append(cell)
    for assessment in assessments:
        aid = assessment.assessment_id
        own = sorted(cells_of.get(aid, []), key=lambda c: (c.site_name, c.grade_order))
        categories: list[str] = []
        values: list[float | None] = []
        for cell in own:
            key = ("cell", aid, cell.site_id, cell.grade_level_id)
            hide = key in hidden
            rows.append(
                Row(
                    [
                        text(assessment.title),
                        text(cell.site_name),
                        text(cell.grade),
                        count_cell(cell.students_tested, hide),
                        rate_cell(cell.students_proficient, cell.students_tested, hide),
                    ]
                )
            )
            categories.append(f"{cell.site_name} · {cell.grade}")
            values.append(shown_rate(cell.students_proficient, cell.students_tested, hide))
        total = ("tested", "all", aid)
        hide = total in hidden
        tested, proficient = figures.counts.get(total, 0), figures.proficient.get(total, 0)
        rows.append(
            Row(
                [
                    text(assessment.title),
                    text("All schools"),
                    text("All grades"),
                    count_cell(tested, hide),
                    rate_cell(proficient, tested, hide),
                ],
                total=True,
            )
        )
        categories.append("All schools · all grades")
        values.append(shown_rate(proficient, tested, hide))
        if any(values):  # a bar to draw
            data.append({"type": "bar", "name": short(assessment.title), "x": categories, "y": values})
            buttons.append({"label": short(assessment.title, 60), "method": "update"})
    chart = None
    if data:
        for index, button in enumerate(buttons):
            visible = [i == index for i in range(len(data))]
            button["args"] = [{"visible": visible}, {"title.text": data[index]["name"]}]
        for index, trace in enumerate(data):
            trace["visible"] = index == 0
        layout = {
            "title": {"text": data[0]["name"]},
            "height": 460,
            "margin": {"t": 90, "l": 60, "r": 20, "b": 40},
            "xaxis": {"type": "category", "automargin": True},
            "yaxis": {"title": {"text": "proficient"}, "tickformat": ".0%", "range": [0, 1]},
            "showlegend": False,
            "updatemenus": [{"buttons": buttons, "x": 0, "xanchor": "left", "y": 1.18, "yanchor": "top"}],
        }
        chart = checked(Chart(data, layout))
    return Section(
        anchor,
        title,
        definition=PROFICIENCY_DEFINITION,
        note=(
            "Pick an assessment in the chart's menu. Cells: students tested, proficiency rate."
            f" {context.suppression_note}"
        ),
        chart=chart,
        chart_note=context.all_suppressed if chart is None else None,
        table=Table(["Assessment", "School", "Grade", "Students tested", "Proficient"], rows),
    )


def bands_section(
    context: Context,
    year: int,
    assessments: Sequence[Assessment],
    figures: AssessmentFigures,
    hidden: frozenset[Hashable],
    band_names: Mapping[tuple[int, int], str],
    who: str,
    group: StudentGroup | None,
) -> Section:
    suffix = "" if group is None else f"-{group.key}"
    anchor = f"assessments-{year}-bands{suffix}"
    title = f"Performance-band distribution{'' if group is None else ': ' + group.label}, {year_label(year)}"
    levels = sorted(
        {k[3] for k in figures.counts if k[0] == "band" and k[1] == who and k[3] is not None}  # type: ignore[index]
    )
    has_none = any(k[0] == "band" and k[1] == who and k[3] is None for k in figures.counts)  # type: ignore[index]
    columns = [*[f"Band {level}" for level in levels], *(["No band"] if has_none else [])]
    rows: list[Row] = []
    series: dict[Any, list[int | None]] = {level: [] for level in [*levels, *([None] if has_none else [])]}
    titles = []
    for assessment in assessments:
        aid = assessment.assessment_id
        total = ("tested", who, aid)
        if total not in figures.counts:
            continue
        titles.append(short(assessment.title))
        cells = [text(assessment.title)]
        for level in series:
            key = ("band", who, aid, level)
            if key not in figures.counts:
                cells.append(count_cell(0, False))
                series[level].append(0)
                continue
            cells.append(count_cell(figures.counts[key], key in hidden))
            series[level].append(shown_count(figures.counts[key], key in hidden))
        cells.append(count_cell(figures.counts[total], total in hidden))
        cells.append(text(assessment.bands or ""))
        rows.append(Row(cells))
    if not rows:
        return no_data(anchor, title, BANDS_DEFINITION)
    traces = [(f"Band {level}" if level is not None else "No band", values) for level, values in series.items()]
    chart = bar_chart(
        f"Students per performance band{'' if group is None else ': ' + group.label}, {year_label(year)}",
        titles,
        traces,
        "students",
        stacked=True,
        horizontal=True,
    )
    if chart is not None:
        for trace, (level, _) in zip(chart.data, series.items()):
            trace["customdata"] = [
                band_names.get((a.assessment_id, level), "")
                for a in assessments
                if ("tested", who, a.assessment_id) in figures.counts
            ]
            trace["hovertemplate"] = "%{y}<br>%{fullData.name} %{customdata}: %{x} students<extra></extra>"
    who_text = "students" if group is None else f"students in the group ({group.label})"
    return Section(
        anchor,
        title,
        definition=BANDS_DEFINITION,
        note=(
            f"Latest attempt of each of the {who_text}, per band level of the assessment's band set (its bands: last"
            f" column, * = mastery). {context.suppression_note}"
        ),
        chart=chart,
        chart_note=context.all_suppressed if chart is None else None,
        table=Table(["Assessment", *columns, "Students tested", "Bands"], rows),
    )


def group_proficiency_section(
    context: Context,
    year: int,
    assessments: Sequence[Assessment],
    figures: AssessmentFigures,
    hidden: frozenset[Hashable],
    group: StudentGroup,
) -> Section:
    anchor = f"assessments-{year}-group-{group.key}"
    title = f"Proficiency: {group.label} and the other students, {year_label(year)}"
    whos = [(f"{group.key}:in", group.label), (f"{group.key}:out", group.outside), ("all", "All students")]
    rows: list[Row] = []
    titles: list[str] = []
    series: dict[str, list[float | None]] = {label: [] for _, label in whos}
    for assessment in assessments:
        aid = assessment.assessment_id
        if ("tested", "all", aid) not in figures.counts:
            continue
        titles.append(short(assessment.title))
        cells = [text(assessment.title)]
        for who, label in whos:
            key = ("tested", who, aid)
            tested, proficient = figures.counts.get(key, 0), figures.proficient.get(key, 0)
            hide = key in hidden
            cells.append(rate_cell(proficient, tested, hide))
            series[label].append(shown_rate(proficient, tested, hide))
        rows.append(Row(cells))
    if not rows:
        return no_data(anchor, title, group.definition)
    chart = bar_chart(
        f"Proficiency: {group.label}, {year_label(year)}", titles, list(series.items()), "proficient", rate=True
    )
    return Section(
        anchor,
        title,
        definition=group.definition,
        note=(
            f"Group membership as of today (dim_students). Cells: proficiency rate of the students tested."
            f" {context.suppression_note}"
        ),
        chart=chart,
        chart_note=context.all_suppressed if chart is None else None,
        table=Table(["Assessment", *[label for _, label in whos]], rows),
    )


# ------------------------------------------------------------------------------------------------------ enrollment
def enrollment_page(context: Context, cells: Sequence[EnrollmentCell], moves: Sequence[WeeklyMoves]) -> Page:
    intro = "<p>Enrollment per school and grade on the snapshot date, and the entries and exits of each week.</p>"
    parts: list[Part] = []
    years = sorted(set(years_of(cells)) | set(years_of(moves)), reverse=True)
    if not years:
        parts += [
            no_data("enrollment-current", "Current enrollment by school and grade", ENROLLED_DEFINITION),
            no_data("enrollment-weekly", "Entries and exits by week", MOVES_DEFINITION),
        ]
    for index, year in enumerate(years):
        parts.append(Heading(f"{year_label(year)} school year", f"enrollment-{year}"))
        parts.append(enrollment_section(context, year, [c for c in cells if c.academic_year == year], index == 0))
        parts.append(moves_section(context, year, [m for m in moves if m.academic_year == year]))
    return Page("enrollment", "Enrollment", intro, parts)


def enrollment_section(context: Context, year: int, cells: Sequence[EnrollmentCell], current: bool) -> Section:
    snapshot = next((cell.snapshot_date for cell in cells if cell.snapshot_date), None)
    on = f" on {snapshot.isoformat()}" if isinstance(snapshot, date) else ""
    anchor = f"enrollment-{year}-{'current' if current else 'snapshot'}"
    title = f"{'Current enrollment' if current else 'Enrollment'} by school and grade{on}, {year_label(year)}"
    if not cells:
        return no_data(anchor, title, ENROLLED_DEFINITION)
    schools = sorted({(cell.site_name, cell.site_id) for cell in cells})
    grades = sorted({(cell.grade_order, cell.grade, cell.grade_level_id) for cell in cells})
    counts: dict[Hashable, int] = {(cell.site_id, cell.grade_level_id): cell.enrolled for cell in cells}
    for _, site in schools:
        counts[(site, ALL)] = sum(counts.get((site, g), 0) for _, _, g in grades)
    for _, _, grade in [*grades, (None, None, ALL)]:
        counts[(DISTRICT, grade)] = sum(counts.get((site, grade), 0) for _, site in schools)
    hidden = suppress(
        counts, grid_groups([s for _, s in schools], [g for _, _, g in grades], DISTRICT, ALL), context.min_cell_size
    )
    columns = [grade for _, grade, _ in grades]
    rows = []
    traces = []
    for name, site in [*schools, ("District", DISTRICT)]:
        out = [text(name)]
        values: list[int | None] = []
        for _, _, grade in grades:
            key = (site, grade)
            out.append(count_cell(counts.get(key), key in hidden) if key in counts else Cell("—", numeric=True))
            values.append(shown_count(counts[key], key in hidden) if key in counts else None)
        out.append(count_cell(counts[(site, ALL)], (site, ALL) in hidden))
        rows.append(Row(out, total=site == DISTRICT))
        if site != DISTRICT:
            traces.append((name, values))
    chart = bar_chart(f"Students enrolled{on}, {year_label(year)}", columns, traces, "students")
    return Section(
        anchor,
        title,
        definition=ENROLLED_DEFINITION,
        note=f"Totals: the sum of the schools' or grades' cells. {context.suppression_note}",
        chart=chart,
        chart_note=context.all_suppressed if chart is None else None,
        table=Table(["School", *columns, "All grades"], rows),
    )


def moves_section(context: Context, year: int, moves: Sequence[WeeklyMoves]) -> Section:
    anchor, title = f"enrollment-{year}-weekly", f"Entries and exits by week, {year_label(year)}"
    if not moves:
        return no_data(anchor, title, MOVES_DEFINITION)
    weeks = sorted({move.week for move in moves})
    counts: dict[Hashable, int] = {}
    for move in moves:
        counts[("entries", move.week)] = counts.get(("entries", move.week), 0) + move.entries
        counts[("exits", move.week)] = counts.get(("exits", move.week), 0) + move.exits
    groups = []
    for kind in ("entries", "exits"):
        counts[(kind, ALL)] = sum(counts[(kind, week)] for week in weeks)
        groups.append(Group((kind, ALL), tuple((kind, week) for week in weeks)))
    hidden = suppress(counts, groups, context.min_cell_size)
    rows = [
        Row(
            [
                text(f"week of {week.isoformat()}"),
                count_cell(counts[("entries", week)], ("entries", week) in hidden),
                count_cell(counts[("exits", week)], ("exits", week) in hidden),
            ]
        )
        for week in weeks
    ]
    rows.append(
        Row(
            [
                text("Whole year, to the snapshot date"),
                count_cell(counts[("entries", ALL)], ("entries", ALL) in hidden),
                count_cell(counts[("exits", ALL)], ("exits", ALL) in hidden),
            ],
            total=True,
        )
    )
    traces = [
        (kind.capitalize(), [shown_count(counts[(kind, week)], (kind, week) in hidden) for week in weeks])
        for kind in ("entries", "exits")
    ]
    chart = bar_chart(
        f"Entries and exits per week, {year_label(year)}", [w.isoformat() for w in weeks], traces, "enrollment spans"
    )
    return Section(
        anchor,
        title,
        definition=MOVES_DEFINITION,
        note=(
            "Per week (Monday to Sunday) of the span's entry or leave date; a span is one student's enrollment at a"
            f" school. {context.suppression_note}"
        ),
        chart=chart,
        chart_note=context.all_suppressed if chart is None else None,
        table=Table(["Week", "Entries", "Exits"], rows),
    )


# ------------------------------------------------------------------------------------------------------ sync health
def sync_page(context: Context, tables: Sequence[SyncTable], runs: Sequence[SyncRun], findings: SyncRun | None) -> Page:
    intro = (
        "<p>How the nightly sync is doing: every raw table's rows and freshness, the last 30 runs, and what the shrink"
        " guard and reconciliation last found (report models <code>rpt_sync_tables</code> and"
        " <code>rpt_sync_runs</code>).</p>"
    )
    return Page(
        "sync",
        "Sync health",
        intro,
        [tables_section(tables), runs_section(runs), findings_section(runs, findings)],
    )


def stamp(value: Any) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else str(value)


def tables_section(tables: Sequence[SyncTable]) -> Section:
    anchor, title = "sync-tables", "Tables"
    if not tables:
        return no_data(anchor, title)
    rows = [
        Row(
            [
                text(table.table_name),
                text(table.endpoint or ""),
                text(table.strategy or ""),
                count_cell(table.rows, False),
                text(stamp(table.last_loaded_at)),
                count_cell(table.days_since_load, False),
            ]
        )
        for table in tables
    ]
    chart = bar_chart(
        "Rows per table", [t.table_name for t in tables], [("rows", [t.rows for t in tables])], "rows", horizontal=True
    )
    if chart is not None:  # a few rows beside millions of attendance marks
        chart.layout["xaxis"] |= {"type": "log", "title": {"text": "rows (log scale)"}}
        chart.layout["xaxis"].pop("rangemode", None)
    return Section(
        anchor,
        title,
        note="Per raw table: its rows, its last successful load, its sync strategy, and the days since that load.",
        chart=chart,
        table=Table(["Table", "Endpoint", "Strategy", "Rows", "Last loaded", "Days since load"], rows),
    )


def runs_section(runs: Sequence[SyncRun]) -> Section:
    anchor, title = "sync-runs", "Runs (last 30)"
    if not runs:
        return no_data(anchor, title)
    ordered = list(reversed(runs))  # oldest first in the chart
    labels = [stamp(run.started_at) for run in ordered]
    traces = [
        (status, [run.seconds if run.status == status else None for run in ordered])
        for status in ("succeeded", "failed")
    ]
    traces = [(name, values) for name, values in traces if any(v is not None for v in values)]
    chart = bar_chart("Run duration", labels, traces or [("runs", [run.seconds for run in ordered])], "seconds")
    if chart is not None:
        chart.layout["barmode"] = "overlay"
    rows = [
        Row(
            [
                text(run.run_id),
                text(stamp(run.started_at)),
                text(stamp(run.finished_at)),
                Cell("—" if run.seconds is None else f"{run.seconds:,.1f}", numeric=True),
                text(run.status or ""),
                count_cell(run.requests, False),
                count_cell(run.retries, False),
                count_cell(run.rows_written, False),
                count_cell(run.rows_removed, False),
                count_cell(run.quarantined, False),
                Cell(run.findings or "", wrap=True),
                Cell(run.error or "", wrap=True),
            ]
        )
        for run in runs
    ]
    columns = ["Run", "Started", "Finished", "Seconds", "Status", "Requests", "Retries", "Rows written"]
    columns += ["Rows removed", "Quarantined", "Findings", "Error"]
    return Section(
        anchor,
        title,
        note=(
            "Newest first: each run's duration, requests and retries, rows written and removed, records quarantined,"
            " the shrink guard's and reconciliation's findings, and the error of a failed run."
        ),
        chart=chart,
        table=Table(columns, rows),
    )


def findings_section(runs: Sequence[SyncRun], findings: SyncRun | None) -> Section:
    anchor, title = "sync-findings", "Shrink guard and reconciliation: last findings"
    if not runs:
        return no_data(anchor, title)
    if findings is None:
        return Section(anchor, title, empty="No run recorded any shrink-guard or reconciliation finding.")
    rows = [
        Row(
            [
                text(findings.run_id),
                text(stamp(findings.started_at)),
                text(findings.status or ""),
                Cell(findings.findings or "", wrap=True),
            ]
        )
    ]
    return Section(
        anchor,
        title,
        note="The newest run whose shrink guard or reconciliation found something.",
        table=Table(["Run", "Started", "Status", "Findings"], rows),
    )


# ------------------------------------------------------------------------------------------------------ index
def index_page(context: Context, pages: Sequence[Page], warehouse: str) -> Page:
    settings = context.settings
    built = stamp(settings.built_at) if settings else "not built yet"
    today = settings.today.isoformat() if settings and settings.today else "—"
    links = "".join(
        f'<li><a href="{page.file_name}">{page.title}</a>: {page.intro.removeprefix("<p>").removesuffix("</p>")}</li>'
        for page in pages
    )
    intro = (
        f'<ul class="pages">{links}</ul>'
        f"<p>Warehouse: <code>{esc(warehouse)}</code>. Models built: {esc(built)}; their today: {esc(today)}.</p>"
        f"<p>Student privacy: {esc(context.suppression_note)} Names appear only in the attendance page's list of"
        " students over the threshold, and only where the warehouse keeps names.</p>"
    )
    if settings is None:
        intro += f'<p class="no-data">{NO_DATA}: the warehouse has no models yet (run illuminate-sync models).</p>'
    return Page("index", "Dashboard", intro, [])
