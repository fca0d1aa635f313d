"""The school calendar of the simulated district: academic years, sessions and instructional days.

Academic year Y is the *ending* year (2027 = 2026-27). A **normal** session runs from the first Monday on or after
12 August of Y-1 to the last Friday on or before 12 June of Y; a **summer** session (only at some sites) runs from
the first Monday on or after 22 June of Y to the last Friday on or before 24 July of Y and belongs to academic year Y.
Instructional days are the weekdays of a session minus the holidays listed in `holidays()`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

NORMAL = 1
SUMMER = 2
SESSION_TYPE_NAMES = {NORMAL: "Normal", SUMMER: "Summer"}


def academic_year(day: dt.date) -> int:
    """The academic year a day belongs to: 1 August starts the next one."""
    return day.year + 1 if day.month >= 8 else day.year


def _weekday_on_or_after(day: dt.date, weekday: int) -> dt.date:
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)


def _weekday_on_or_before(day: dt.date, weekday: int) -> dt.date:
    return day - dt.timedelta(days=(day.weekday() - weekday) % 7)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    return _weekday_on_or_after(dt.date(year, month, 1), weekday) + dt.timedelta(weeks=n - 1)


def _last_weekday(year: int, month: int, weekday: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return _weekday_on_or_before(nxt - dt.timedelta(days=1), weekday)


@dataclass(frozen=True, slots=True)
class Session:
    academic_year: int
    session_type_id: int
    start: dt.date
    end: dt.date

    @property
    def kind(self) -> str:
        return SESSION_TYPE_NAMES[self.session_type_id]

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


@lru_cache(maxsize=64)
def normal_session(year: int) -> Session:
    start = _weekday_on_or_after(dt.date(year - 1, 8, 12), 0)
    end = _weekday_on_or_before(dt.date(year, 6, 12), 4)
    return Session(year, NORMAL, start, end)


@lru_cache(maxsize=64)
def summer_session(year: int) -> Session:
    start = _weekday_on_or_after(dt.date(year, 6, 22), 0)
    end = _weekday_on_or_before(dt.date(year, 7, 24), 4)
    return Session(year, SUMMER, start, end)


def session(year: int, session_type_id: int) -> Session:
    return normal_session(year) if session_type_id == NORMAL else summer_session(year)


@lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[dt.date]:
    """Holidays of academic year `year` (normal session) and of its summer session."""
    y0, y1 = year - 1, year
    days: set[dt.date] = {
        _nth_weekday(y0, 9, 0, 1),  # Labor Day
        dt.date(y0, 11, 11),  # Veterans Day
        _nth_weekday(y1, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(y1, 2, 0, 3),  # Presidents' Day
        _last_weekday(y1, 5, 0),  # Memorial Day
    }
    thanksgiving = _nth_weekday(y0, 11, 3, 4)
    days |= {thanksgiving, thanksgiving + dt.timedelta(days=1)}
    winter = dt.date(y0, 12, 21)
    days |= {winter + dt.timedelta(days=i) for i in range(12)}  # 21 Dec .. 1 Jan
    spring = _weekday_on_or_after(dt.date(y1, 3, 30), 0)
    days |= {spring + dt.timedelta(days=i) for i in range(5)}
    july4 = dt.date(y1, 7, 4)
    if july4.weekday() == 5:
        july4 -= dt.timedelta(days=1)
    elif july4.weekday() == 6:
        july4 += dt.timedelta(days=1)
    days.add(july4)
    return frozenset(days)


@lru_cache(maxsize=128)
def instructional_days(year: int, session_type_id: int = NORMAL) -> tuple[dt.date, ...]:
    """Every instructional day of a session, in order."""
    sess = session(year, session_type_id)
    off = holidays(year)
    out: list[dt.date] = []
    day = sess.start
    while day <= sess.end:
        if day.weekday() < 5 and day not in off:
            out.append(day)
        day += dt.timedelta(days=1)
    return tuple(out)


@lru_cache(maxsize=128)
def instructional_day_set(year: int, session_type_id: int = NORMAL) -> frozenset[dt.date]:
    return frozenset(instructional_days(year, session_type_id))


def is_instructional(day: dt.date, session_type_id: int = NORMAL) -> bool:
    return day in instructional_day_set(academic_year(day), session_type_id)


def nearest_in_session(day: dt.date, include_summer: bool = True) -> dt.date:
    """`day` itself if some session (normal, or summer when included) covers it, else the nearest session edge."""
    year = academic_year(day)
    sessions = [normal_session(y) for y in (year - 1, year, year + 1)]
    if include_summer:
        sessions += [summer_session(y) for y in (year - 1, year, year + 1)]
    if any(s.contains(day) for s in sessions):
        return day
    edges = sorted({s.start for s in sessions} | {s.end for s in sessions})
    return min(edges, key=lambda d: (abs((d - day).days), d))


def academic_year_bounds(year: int) -> tuple[dt.date, dt.date]:
    """1 August of year-1 to 31 July of year."""
    return dt.date(year - 1, 8, 1), dt.date(year, 7, 31)


def instructional_days_between(start: dt.date, end: dt.date, session_type_id: int = NORMAL) -> list[dt.date]:
    out: list[dt.date] = []
    for year in range(academic_year(start), academic_year(end) + 1):
        out.extend(d for d in instructional_days(year, session_type_id) if start <= d <= end)
    return out


def previous_instructional_day(day: dt.date, session_type_id: int = NORMAL) -> dt.date:
    days = instructional_days(academic_year(day), session_type_id)
    prior = [d for d in days if d < day]
    return prior[-1] if prior else day - dt.timedelta(days=1)
