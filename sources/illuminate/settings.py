"""Constants of the Illuminate source: defaults of the settings, names of the columns the sync adds."""

from __future__ import annotations

from datetime import timedelta

DATASET_NAME = "illuminate"
"""The DuckDB schema the raw tables load into."""

DEFAULT_MAX_CONCURRENCY = 8
"""Requests in flight at once, across all resources (a whole number, or "auto": see `concurrency.py`)."""

DEFAULT_MAX_CONCURRENCY_CEILING = 16
"""With `max_concurrency = "auto"`, the most requests in flight it may reach: twice the fixed default, the 12 workers
of the benchmark's server plus room to find them (bench/README.md, adaptive concurrency)."""

TABLES_AT_ONCE = 6
"""Tables fetching at the same time (`priority`): the first in the extraction order takes the request slots it can
use, the others fill the slots it leaves idle. Measured (bench, 1,000 students, 200 ms a request, concurrency 8, full
sync / its floor): one table at a time 1.32; 3 at once 1.14 (the pool full 86 % of the downloads); 6 at once 1.13
(89 %; peak memory 309 MB against 313 MB at 3): the first seconds, 20 small tables of 1 to 16 requests each with
their dependencies (Sites, Terms), fill the pool only with several at once."""

DEFAULT_NETWORK_MAX_CONCURRENCY = 32
"""`run --all-instances`: requests in flight across the instances together; four instances at their default each."""

MODIFIED_AFTER_OVERLAP = timedelta(hours=2)
"""The API cache clears every 2 hours: a change can surface that late, so cursors overlap the last run by this."""

UNKNOWN_API_ZONE_MARGIN = timedelta(hours=12)
"""Without `api_timezone`, a `modified_after` cursor is sent this much earlier. The API's timestamps and its
`modified_after` are the server's wall clock without a zone, and the documentation does not name the zone: a cursor
written in UTC is read as local time, so on a server in US Pacific time (UTC-8) a cursor "2 hours before the last
run" would mean 6 hours after it, and every change of those 8 hours would be missed for good. No zone lags UTC by
more than 12 hours (UTC-12), so with this margin a server anywhere sees every change; a zone ahead of UTC only makes
the overlap longer. The cost: up to 12 more hours of changes refetched per run on the three endpoints with a cursor;
`api_timezone` removes it."""

DEFAULT_ATTENDANCE_LOOKBACK_DAYS = 14
"""Attendance is corrected retroactively: every run refetches this many days before the last synced date."""

DEFAULT_POOL_LOOKBACK_DAYS = 30
"""Pool assessment results have no `modified_after`: every run refetches this many days of `date_taken`."""

DEFAULT_GRADEBOOK_REFRESH_DAYS = 7
"""The gradebook endpoints have no change filter: the current year is refetched whole, so only every N days (about
half of a nightly run's requests otherwise). 1 refetches it every run."""

DEFAULT_RECONCILE_EVERY_N_RUNS = 7
"""Assessment aggregates are reconciled against the API's counts every N runs (0 disables the automatic check)."""

DEFAULT_ACADEMIC_YEARS_BACK = 1
"""Without --academic-year, the sync covers the current academic year and this many before it."""

ACADEMIC_YEAR_FIRST_MONTH = 8
"""Academic years are named by their ending year and start in August: 2026-09-01 is in academic year 2027."""

SLICE_YEAR_COLUMN = "_academic_year"
"""Added to academic-year-slice tables: the academic year whose window returned the row (the slice it belongs to)."""

DELETED_COLUMN = "_deleted"
"""The hard-delete column of tombstone rows: a tombstone names a slice (or a key) whose old rows are removed."""

MIN_ACADEMIC_YEAR = 2000
MAX_ACADEMIC_YEAR = 2100

DEFAULT_SHRINK_GUARD_RATIO = 0.5
"""A refetch that would replace a table or slice with fewer than this share of its rows (or none) fails the run."""
