"""Academic years, session windows and the request windows each sync strategy asks for.

Without date parameters most endpoints answer only for the nearest in-session date, so every request the sync
makes carries an explicit window. Windows come from the Terms endpoint: per academic year, one window per session
type (normal, summer) spanning its terms at every site.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from .catalog import Window
from .settings import ACADEMIC_YEAR_FIRST_MONTH, UNKNOWN_API_ZONE_MARGIN


def academic_year_of(day: date) -> int:
    """The academic year (its ending year) that `day` belongs to: 2026-09-01 -> 2027, 2026-06-01 -> 2026."""
    return day.year + 1 if day.month >= ACADEMIC_YEAR_FIRST_MONTH else day.year


def academic_year_bounds(year: int) -> tuple[date, date]:
    """The calendar span that can hold academic year `year`'s sessions (August to the following July)."""
    return date(year - 1, ACADEMIC_YEAR_FIRST_MONTH, 1), date(year, ACADEMIC_YEAR_FIRST_MONTH, 1) - timedelta(days=1)


@dataclass(frozen=True, order=True)
class SessionWindow:
    """One session (normal or summer) of one academic year, across all sites."""

    academic_year: int
    start: date
    end: date
    session_type: str

    def clipped(self, last_day: date) -> SessionWindow | None:
        """The part of the window up to `last_day`, or None when the session has not started by then."""
        if self.start > last_day:
            return None
        return SessionWindow(self.academic_year, self.start, min(self.end, last_day), self.session_type)

    def days(self) -> Iterator[date]:
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)


def session_windows(terms: Iterable[Mapping[str, Any]], year: int) -> list[SessionWindow]:
    """Per session type, the span of year `year`'s terms; the whole academic year when it has no terms yet.

    Args:
        terms: Term rows (typed: `start_date`/`end_date` as dates, `academic_year` as int, `session_type` text).
        year: The academic year.
    """
    spans: dict[str, tuple[date, date]] = {}
    for term in terms:
        if term.get("academic_year") != year or term.get("start_date") is None or term.get("end_date") is None:
            continue
        session = str(term.get("session_type") or "Normal")
        start, end = term["start_date"], term["end_date"]
        if session in spans:
            start, end = min(start, spans[session][0]), max(end, spans[session][1])
        spans[session] = (start, end)
    if not spans:
        start, end = academic_year_bounds(year)
        return [SessionWindow(year, start, end, "Normal")]
    return sorted(SessionWindow(year, start, end, session) for session, (start, end) in spans.items())


CURSOR_FORMAT = "%Y-%m-%d %H:%M:%S"
"""How a `modified_after` cursor is stored (in UTC) and sent (in the server's wall-clock time)."""


def api_wall_clock(cursor_utc: str, api_zone: ZoneInfo | None) -> str:
    """The `modified_after` value for a cursor stored as a UTC time: that instant on the server's clock when its
    zone is known (`api_timezone`), else the UTC time less `UNKNOWN_API_ZONE_MARGIN`, early enough for any zone."""
    instant = datetime.strptime(cursor_utc, CURSOR_FORMAT).replace(tzinfo=timezone.utc)
    if api_zone is None:
        return (instant - UNKNOWN_API_ZONE_MARGIN).strftime(CURSOR_FORMAT)
    return instant.astimezone(api_zone).strftime(CURSOR_FORMAT)


def window_params(window_kind: Window | None, window: SessionWindow, today: date) -> dict[str, str] | None:
    """The query parameters that select `window` on an endpoint whose window is expressed as `window_kind`.

    Returns None when the window cannot be asked for yet (an as-of date in a session that has not started).
    """
    if window_kind == "date_range":
        return {"start_date": window.start.isoformat(), "end_date": window.end.isoformat()}
    if window_kind == "enrollment_range":
        return {"enrollment_start_date": window.start.isoformat(), "enrollment_end_date": window.end.isoformat()}
    if window_kind == "date_taken_range":
        # Pool results: `date_taken_*` filters the results, `start_date`/`end_date` the students. Without the latter
        # the API takes `date`'s documented default ("today (or nearest in session date)") and answers only for
        # the students enrolled that day: every result of a student who tested and then left would be missing.
        last = min(window.end, today)
        if window.start > last:
            return None
        span = {"start_date": window.start.isoformat(), "end_date": last.isoformat()}
        return {**span, "date_taken_start": window.start.isoformat(), "date_taken_end": last.isoformat()}
    if window_kind == "as_of_date":
        # Gradebook: students enrolled as of one date: the session's last day, or today while it is running.
        clipped = window.clipped(today)
        if clipped is None:
            return None
        return {"date": clipped.end.isoformat(), "session_type": window.session_type}
    if window_kind is None:
        return {}
    raise ValueError(f"window kind {window_kind!r} is not a range")


def attendance_dates(windows: Iterable[SessionWindow], first: date, last: date, include_weekends: bool) -> list[date]:
    """The in-session dates from `first` to `last`, oldest first."""
    dates: set[date] = set()
    for window in windows:
        for day in window.days():
            if first <= day <= last and (include_weekends or day.weekday() < 5):
                dates.add(day)
    return sorted(dates)


def current_and_previous_years(today: date, years_back: int) -> list[int]:
    current = academic_year_of(today)
    return list(range(current - years_back, current + 1))
