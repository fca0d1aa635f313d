"""Write-back: push assessment scores and repository data from DuckDB queries to Illuminate, and create user API keys.

Commands (wired into `illuminate-sync` by `add_writeback_commands` and `run_writeback_command`):

* `push-scores (--assessment-id N | --local-assessment-id X) --query SQL --duckdb PATH`: the query's rows (columns
  `local_student_id`, `responses` and optionally `version`, `text_responses`, `date_taken`) are posted to
  `Assessment/{id}/Scores/` or `Assessment/local_assessment_id/{id}/Scores/`.
* `push-repository (--repository-id N | --local-repository-id X) --query SQL --duckdb PATH`: the query's rows
  (`student_id` and the repository's `field_*` columns) are posted to `Repository/{id}/Data/` or
  `Repository/local_repository_id/{id}/Data/`.
* `create-user-keys --username U`: the user's API key and secret from `CreateUserApiKeys/`; the password comes from
  `ILLUMINATE_USER_PASSWORD` or a prompt, never from the command line.

A push runs the query on a read-only connection, validates every row (invalid rows are listed with the reason and not
sent), then posts the valid rows in batches. Each batch's answer is appended to `illuminate_writeback.push_log` in the
same DuckDB file, with the SHA-256 digest of the whole validated payload and its target. A payload whose every row
was already delivered to the same target (in batches the API answered) is refused unless `--force`; after a push
that stopped at a failed batch, the same command sends only the rows not delivered yet. The whole push holds the
warehouse lock of the file, so it never runs alongside a sync or another push of the same file.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import math
import os
import re
import sys
import textwrap
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.configuration.inject import with_config

from illuminate_sync.pipelines.cli_base import EXIT_FAILED, EXIT_OK, EXIT_USAGE, positive_int
from illuminate_sync.sources.illuminate.auth import IlluminateCredentials
from illuminate_sync.sources.illuminate.client import BASE_URL_ENV, IlluminateClient
from illuminate_sync.sources.illuminate.errors import ConfigurationError, IlluminateError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "LOG_TABLE",
    "PASSWORD_ENV",
    "Prepared",
    "PushReport",
    "RowProblem",
    "Target",
    "UsageError",
    "add_writeback_commands",
    "create_user_keys",
    "payload_digest",
    "prepare_repository",
    "prepare_scores",
    "push",
    "read_query",
    "resolve_client_settings",
    "run_writeback_command",
]

COMMANDS = ("push-scores", "push-repository", "create-user-keys")
DEFAULT_BATCH_SIZE = 500
LOG_SCHEMA = "illuminate_writeback"
LOG_TABLE = f"{LOG_SCHEMA}.push_log"
PASSWORD_ENV = "ILLUMINATE_USER_PASSWORD"

STATUS_OK = "ok"
"""A batch the API saved completely."""
STATUS_PARTIAL = "partial"
"""A batch the API answered, rejecting some of its rows (listed in `rejected_details`)."""
STATUS_FAILED = "failed"
"""A batch whose request failed (after retries); the API may or may not have applied it."""

SCORE_COLUMNS = ("local_student_id", "responses", "version", "text_responses", "date_taken")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOG_COLUMNS = """
    pushed_at timestamp,
    push_id varchar,
    command varchar,
    instance varchar,
    target_kind varchar,
    target_id varchar,
    batch_number integer,
    batch_count integer,
    first_item integer,
    last_item integer,
    rows_sent integer,
    students_saved integer,
    responses_saved integer,
    rejected_count integer,
    rejected_details varchar,
    payload_digest varchar,
    status varchar,
    error varchar
"""

EXIT_STATUS_HELP = """exit status:
  0  every row the query returned was sent and saved (or, with --dry-run, is valid)
  1  some rows were not sent (invalid: listed with the reason) or were rejected by the API (listed per row; the
     other rows were saved), a batch failed (the batches before it stay delivered and logged; running the same
     command again sends only the rest), the payload was already pushed (use --force), or a setting is missing
  2  usage error: bad options, a query that fails, missing or unknown columns, a DuckDB file that does not exist

Every batch's answer is logged in table illuminate_writeback.push_log of the DuckDB file (pushed_at is UTC)."""


class UsageError(IlluminateError):
    """The command's input is wrong (options, the query, its columns); exit status 2."""


# ---------------------------------------------------------------------------------------------------------------------
# targets, rows and validation
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a push goes.

    Attributes:
        kind: `assessment_id`, `local_assessment_id`, `repository_id` or `local_repository_id`.
        ident: The id (system ids as decimal text).
    """

    kind: str
    ident: str

    @property
    def path(self) -> str:
        """The API path, relative to the API root."""
        ident = quote(self.ident, safe="")
        return {
            "assessment_id": f"Assessment/{ident}/Scores/",
            "local_assessment_id": f"Assessment/local_assessment_id/{ident}/Scores/",
            "repository_id": f"Repository/{ident}/Data/",
            "local_repository_id": f"Repository/local_repository_id/{ident}/Data/",
        }[self.kind]

    def __str__(self) -> str:
        noun = "assessment" if "assessment" in self.kind else "repository"
        if self.kind.startswith("local_"):
            return f"{noun} with local id {self.ident!r}"
        return f"{noun} {self.ident}"


@dataclass(frozen=True)
class RowProblem:
    """A row that is not sent (invalid) or that the API rejected.

    Attributes:
        row: The row's number in the query's result (1-based).
        student: The row's student id as text, when it has one.
        reason: Why the row was not sent or saved.
    """

    row: int
    student: str | None
    reason: str

    def render(self, student_column: str) -> str:
        who = f" ({student_column} {self.student})" if self.student is not None else ""
        return f"{f'row {self.row}' if self.row else 'a row'}{who}: {self.reason}"


@dataclass
class Prepared:
    """A validated push: what would be sent, and the rows that are not.

    Attributes:
        command: `push-scores` or `push-repository`.
        target: Where it goes.
        student_column: `local_student_id` or `student_id`.
        rows_read: The rows the query returned.
        items: The payload: one JSON object per valid row, in query order.
        row_numbers: The query row number (1-based) of each item.
        problems: The invalid rows, with the reason.
        digest: The SHA-256 of the canonical JSON of the target and the items.
    """

    command: str
    target: Target
    student_column: str
    rows_read: int
    items: list[dict[str, Any]]
    row_numbers: list[int]
    problems: list[RowProblem]
    digest: str = ""

    def __post_init__(self) -> None:
        if not self.digest:
            self.digest = payload_digest(self.target, self.items)


def batch_ranges(indexes: Sequence[int], batch_size: int) -> list[tuple[int, int]]:
    """Splits item indexes (ascending) into batches: (start, end) ranges of at most `batch_size` contiguous items."""
    ranges: list[tuple[int, int]] = []
    run_start: int | None = None
    previous = -2
    for index in [*indexes, -1]:
        if index != previous + 1:
            if run_start is not None:
                ranges.extend(
                    (a, min(a + batch_size, previous + 1)) for a in range(run_start, previous + 1, batch_size)
                )
            run_start = index
        previous = index
    return ranges


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text: the form the payload digest is taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def payload_digest(target: Target, items: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 (hex) of the canonical JSON of the target (kind and id) and the whole validated payload."""
    document = {"target": {"kind": target.kind, "id": target.ident}, "payload": list(items)}
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def read_query(duckdb_path: Path, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Runs `query` on a read-only connection to `duckdb_path` and returns (column names, rows).

    Raises:
        UsageError: The file does not exist, the query fails or returns no result set.
        IlluminateError: The file is locked by another process.
    """
    import duckdb

    if not duckdb_path.is_file():
        raise UsageError(f"the DuckDB file {duckdb_path} does not exist: pass --duckdb the file your query reads")
    if not query.strip():
        raise UsageError("--query is empty: give a SELECT that returns the rows to push")
    try:
        con = duckdb.connect(str(duckdb_path), read_only=True)
    except duckdb.Error as error:
        raise IlluminateError(
            f"could not open {duckdb_path} read-only ({_first_line(error)}): is another program writing to it?"
        ) from None
    try:
        try:
            result = con.execute(query)
            description = result.description
            rows = result.fetchall() if description else []
        except duckdb.Error as error:
            raise UsageError(
                f"the query failed: {_first_line(error)}: fix the SQL in --query (it runs read-only on {duckdb_path})"
            ) from None
    finally:
        con.close()
    if not description:
        raise UsageError("the query returned no result set: --query must be a SELECT (or another query with rows)")
    return [str(column[0]) for column in description], rows


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]


def _column_map(columns: Sequence[str], command: str) -> dict[str, int]:
    """Lower-cased column name -> position; duplicate names are a usage error."""
    positions: dict[str, int] = {}
    for position, name in enumerate(columns):
        key = name.lower()
        if key in positions:
            raise UsageError(f"the query returns two columns named {name!r}: give each column of {command} one name")
        positions[key] = position
    return positions


def _student_id(value: Any) -> tuple[int | str | None, str | None]:
    """A student id as sent (whole numbers as int, text stripped) and the problem, if any."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "missing student id"
    if isinstance(value, bool):
        return None, f"the student id {value!r} is not an id"
    if isinstance(value, int):
        return value, None
    if isinstance(value, (float, Decimal)):
        if math.isfinite(value) and value == int(value):
            return int(value), None
        return None, f"the student id {value} is not a whole number"
    if isinstance(value, str):
        return value.strip(), None
    return None, f"the student id is a {type(value).__name__}, not a number or text"


def _as_list(value: Any, name: str) -> tuple[list[Any] | None, str | None]:
    """A list column's value (a DuckDB LIST, or JSON text holding a list)."""
    if isinstance(value, (list, tuple)):
        return list(value), None
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None, f"{name} is text that is not a JSON list"
        if isinstance(parsed, list):
            return parsed, None
    return None, f"{name} is not a list (got {type(value).__name__}): return a LIST such as ['A', 'B', '3']"


def _response(value: Any, name: str, index: int) -> tuple[str | int | None, str | None]:
    """One response: text as is, whole numbers (rubric scores) as int, NULL as an empty (blank) response."""
    if value is None:
        return "", None
    if isinstance(value, str):
        return value, None
    if isinstance(value, bool):
        return None, f"{name}[{index + 1}] is {value}: responses are letters or whole rubric scores"
    if isinstance(value, int):
        return value, None
    if isinstance(value, (float, Decimal)) and math.isfinite(value) and value == int(value):
        return int(value), None
    return None, f"{name}[{index + 1}] is {value!r}: responses are letters or whole rubric scores"


def _date_taken(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, datetime):
        return None, f"date_taken {value} is a timestamp: cast it to DATE (date_taken::date)"
    if isinstance(value, date):
        return value.isoformat(), None
    if isinstance(value, str):
        text = value.strip()
        if _DATE_RE.match(text):
            try:
                return date.fromisoformat(text).isoformat(), None
            except ValueError:
                pass
        return None, f"date_taken {value!r} is not a date: use YYYY-MM-DD"
    return None, f"date_taken {value!r} is not a date: use YYYY-MM-DD"


def _version(value: Any) -> tuple[int | None, str | None]:
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, (float, Decimal)) and math.isfinite(value) and value == int(value):
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number < 1:
        return None, f"version {value!r} is not a version number (1, 2, ...)"
    return number, None


def prepare_scores(target: Target, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Prepared:
    """Validates the rows of a `push-scores` query and builds the Scores payload.

    A row is not sent when its `local_student_id` is missing, its `responses` are not a list or empty or hold
    something that is not a response, its `text_responses` are not a list of text as long as `responses`, its
    `version` is not a whole number from 1, its `date_taken` is not a date, or when an earlier row has the same
    student and `date_taken` (the API would keep one of them).

    Raises:
        UsageError: A required column is missing, or a column is not one the Scores endpoint takes.
    """
    positions = _column_map(columns, "push-scores")
    unknown = [name for name in columns if name.lower() not in SCORE_COLUMNS]
    if unknown:
        raise UsageError(
            f"the query returns column {unknown[0]!r}, which the Scores endpoint does not take: return only"
            f" {', '.join(SCORE_COLUMNS)} (rename or drop it in --query)"
        )
    for required in ("local_student_id", "responses"):
        if required not in positions:
            raise UsageError(
                f"the query has no column {required!r}: push-scores needs local_student_id and responses (a list),"
                " optionally version, text_responses and date_taken"
            )
    items: list[dict[str, Any]] = []
    numbers: list[int] = []
    problems: list[RowProblem] = []
    seen: dict[tuple[str, str | None], int] = {}
    for number, row in enumerate(rows, start=1):
        values = {name: row[position] for name, position in positions.items()}
        student, problem = _student_id(values["local_student_id"])
        shown = None if student is None else str(student)
        item, problem = _score_item(student, values) if problem is None else (None, problem)
        if item is not None:
            key = (str(student), item.get("date_taken"))
            if key in seen:
                item, problem = None, f"same student and date_taken as row {seen[key]} (only one is sent)"
            else:
                seen[key] = number
        if item is None:
            problems.append(RowProblem(number, shown, problem or "invalid"))
            continue
        items.append(item)
        numbers.append(number)
    return Prepared("push-scores", target, "local_student_id", len(rows), items, numbers, problems)


def _score_item(student: int | str | None, values: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    responses_raw, problem = _as_list(values["responses"], "responses")
    if responses_raw is None:
        return None, "missing responses" if values["responses"] is None else problem
    if not responses_raw:
        return None, "empty responses"
    responses: list[str | int | None] = []
    for index, value in enumerate(responses_raw):
        response, problem = _response(value, "responses", index)
        if problem:
            return None, problem
        responses.append(response)
    item: dict[str, Any] = {"local_student_id": student}
    if values.get("version") is not None:
        version, problem = _version(values["version"])
        if problem:
            return None, problem
        item["version"] = version
    item["responses"] = responses
    if values.get("text_responses") is not None:
        texts_raw, problem = _as_list(values["text_responses"], "text_responses")
        if texts_raw is None:
            return None, problem
        texts: list[str] = []
        for index, value in enumerate(texts_raw):
            if value is not None and not isinstance(value, str):
                return None, f"text_responses[{index + 1}] is {value!r}, not text"
            texts.append(value or "")
        if texts and len(texts) != len(responses):
            return None, f"text_responses has {len(texts)} items but responses has {len(responses)}"
        if texts:
            item["text_responses"] = texts
    if values.get("date_taken") is not None:
        taken, problem = _date_taken(values["date_taken"])
        if problem:
            return None, problem
        item["date_taken"] = taken
    return item, None


def _field_value(value: Any, name: str) -> tuple[Any, str | None]:
    """A repository field value as JSON: text, numbers and booleans as they are, dates as ISO text, NULL as null."""
    if value is None or isinstance(value, (str, bool, int)):
        return value, None
    if isinstance(value, float):
        return (value, None) if math.isfinite(value) else (None, f"{name} is {value}, not a number")
    if isinstance(value, Decimal):
        return (str(value), None) if value.is_finite() else (None, f"{name} is {value}, not a number")
    if isinstance(value, datetime):
        return value.isoformat(sep=" "), None
    if isinstance(value, (date, time)):
        return value.isoformat(), None
    if isinstance(value, uuid.UUID):
        return str(value), None
    return None, f"{name} holds a {type(value).__name__}: the API takes one text or number per field"


def prepare_repository(target: Target, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Prepared:
    """Validates the rows of a `push-repository` query and builds the repository Data payload.

    A row is not sent when its `student_id` is missing or not an id, when a `field_*` value is a list, a struct or
    not a finite number, or when all its `field_*` values are NULL.

    Raises:
        UsageError: `student_id` or every `field_*` column is missing, or a column is neither.
    """
    positions = _column_map(columns, "push-repository")
    fields = [name for name in columns if name.lower().startswith("field_") and len(name) > len("field_")]
    unknown = [name for name in columns if name.lower() != "student_id" and name not in fields]
    if unknown:
        raise UsageError(
            f"the query returns column {unknown[0]!r}: push-repository takes student_id and the repository's"
            " field_* columns only (rename it field_... or drop it in --query)"
        )
    if "student_id" not in positions:
        raise UsageError("the query has no column 'student_id': push-repository needs student_id and field_* columns")
    if not fields:
        raise UsageError(
            "the query has no field_* column: return the repository's fields as field_<name> columns next to student_id"
        )
    student_position = positions["student_id"]
    field_positions = [(name, columns.index(name)) for name in fields]
    items: list[dict[str, Any]] = []
    numbers: list[int] = []
    problems: list[RowProblem] = []
    for number, row in enumerate(rows, start=1):
        student, problem = _student_id(row[student_position])
        shown = None if student is None else str(student)
        item: dict[str, Any] | None = {"student_id": student}
        if problem is None:
            assert item is not None
            for name, position in field_positions:
                value, problem = _field_value(row[position], name)
                if problem:
                    break
                item[name] = value
            if problem is None and all(item[name] is None for name in fields):
                problem = "every field_* value is NULL (nothing to store)"
        if problem is not None:
            problems.append(RowProblem(number, shown, problem))
            continue
        items.append(item)  # type: ignore[arg-type]
        numbers.append(number)
    return Prepared("push-repository", target, "student_id", len(rows), items, numbers, problems)


# ---------------------------------------------------------------------------------------------------------------------
# the push log
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class BatchOutcome:
    """The answer to one batch, as logged."""

    number: int
    first_item: int
    last_item: int
    first_row: int
    last_row: int
    rows_sent: int
    status: str
    students_saved: int | None = None
    responses_saved: int | None = None
    rejected_count: int = 0
    rejected_details: list[Any] = field(default_factory=list)
    error: str | None = None


@dataclass
class PushReport:
    """What a push did.

    Attributes:
        push_id: The id of the push in the log.
        batch_count: The number of batches of the push.
        batches: The outcome of each batch sent, in order (the last one failed when `failed` is set).
        rejected: The rows the API rejected.
        failed: The error of the batch that failed, if one did.
    """

    push_id: str
    batch_count: int
    batches: list[BatchOutcome] = field(default_factory=list)
    rejected: list[RowProblem] = field(default_factory=list)
    failed: str | None = None


def ensure_log_table(con: Any) -> None:
    """Creates schema `illuminate_writeback` and table `push_log` if missing."""
    con.execute(f"create schema if not exists {LOG_SCHEMA}")
    con.execute(f"create table if not exists {LOG_TABLE} ({_LOG_COLUMNS})")


@dataclass
class PushHistory:
    """What the log holds about earlier pushes of one payload to one target.

    Attributes:
        answered: The payload positions (0-based) of the items in batches the API answered (`ok` or `partial`).
        last_push_id: The push that logged the latest of those batches.
        last_pushed_at: When (UTC).
    """

    answered: set[int] = field(default_factory=set)
    last_push_id: str | None = None
    last_pushed_at: datetime | None = None

    def complete(self, item_count: int) -> bool:
        """True when every item of the payload was in a batch the API answered."""
        return item_count > 0 and all(index in self.answered for index in range(item_count))


def push_history(duckdb_path: Path, target: Target, digest: str) -> PushHistory:
    """The items of the payload `digest` that earlier pushes to `target` delivered (batches the API answered)."""
    import duckdb

    history = PushHistory()
    query = f"""
        select first_item, last_item, push_id, pushed_at from {LOG_TABLE}
        where target_kind = ? and target_id = ? and payload_digest = ? and status in (?, ?)
        order by pushed_at
    """
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        try:
            rows = con.execute(query, [target.kind, target.ident, digest, STATUS_OK, STATUS_PARTIAL]).fetchall()
        except duckdb.CatalogException:  # no log yet
            return history
    for first, last, push_id, pushed_at in rows:
        if first is not None and last is not None:
            history.answered.update(range(int(first) - 1, int(last)))
        history.last_push_id, history.last_pushed_at = str(push_id), pushed_at
    return history


def _log_batch(
    duckdb_path: Path, prepared: Prepared, instance: str, push_id: str, batch_count: int, outcome: BatchOutcome
) -> None:
    import duckdb

    try:
        with duckdb.connect(str(duckdb_path)) as con:
            ensure_log_table(con)
            _insert_log_row(con, prepared, instance, push_id, batch_count, outcome)
    except duckdb.Error as error:
        raise IlluminateError(
            f"batch {outcome.number} {'failed and' if outcome.status == STATUS_FAILED else 'was delivered but'} could"
            f" not be logged in {LOG_TABLE} of {duckdb_path}: {_first_line(error)}"
        ) from None


def _insert_log_row(
    con: Any, prepared: Prepared, instance: str, push_id: str, batch_count: int, outcome: BatchOutcome
) -> None:
    con.execute(
        f"insert into {LOG_TABLE} values ({', '.join('?' * 18)})",
        [
            datetime.now(timezone.utc).replace(tzinfo=None),
            push_id,
            prepared.command,
            instance,
            prepared.target.kind,
            prepared.target.ident,
            outcome.number,
            batch_count,
            outcome.first_item,
            outcome.last_item,
            outcome.rows_sent,
            outcome.students_saved,
            outcome.responses_saved,
            outcome.rejected_count,
            json.dumps(outcome.rejected_details, default=str),
            prepared.digest,
            outcome.status,
            outcome.error,
        ],
    )


# ---------------------------------------------------------------------------------------------------------------------
# sending
# ---------------------------------------------------------------------------------------------------------------------


@with_config(sections=("sources", "illuminate"))
def _settings(
    base_url: str = dlt.config.value, credentials: IlluminateCredentials = dlt.secrets.value
) -> tuple[str, IlluminateCredentials]:
    """The sync source's `base_url` and `credentials`, resolved by dlt under `sources.illuminate`."""
    return base_url, credentials


def resolve_client_settings() -> tuple[str, IlluminateCredentials]:
    """The base URL and credentials, resolved like the sync's (`SOURCES__ILLUMINATE__*`, `.dlt/*.toml`).

    Raises:
        ConfigurationError: A setting is missing or incomplete; the message names the environment variable.
    """
    try:
        return _settings()
    except ConfigFieldMissingException as missing:
        names = [str(name) for name in getattr(missing, "fields", []) or []]
        if "base_url" in names or not names:
            raise ConfigurationError(
                f"{BASE_URL_ENV} is not set: set it to the instance root, e.g."
                " https://yourdistrict.illuminateed.com/live (or base_url under [sources.illuminate] in"
                " .dlt/config.toml)"
            ) from None
        raise ConfigurationError(
            f"missing setting {', '.join('SOURCES__ILLUMINATE__' + name.upper() for name in names)}: set it in the"
            " environment or in .dlt/secrets.toml"
        ) from None


def make_client() -> IlluminateClient:
    """An `IlluminateClient` of the configured instance (one request at a time: writes are sent in order)."""
    base_url, credentials = resolve_client_settings()
    return IlluminateClient(base_url, credentials, max_concurrency=1)


def _count(answer: Mapping[str, Any], key: str) -> int | None:
    value = answer.get(key)
    try:
        return None if value is None or value == "" else int(str(value).strip())
    except ValueError:
        return None


def _send_batch(client: Any, prepared: Prepared, start: int, end: int, number: int) -> BatchOutcome:
    items = prepared.items[start:end]
    outcome = BatchOutcome(
        number, start + 1, end, prepared.row_numbers[start], prepared.row_numbers[end - 1], len(items), STATUS_OK
    )
    try:
        answer = client.post_json(prepared.target.path, payload=items)
    except IlluminateError as error:
        outcome.status, outcome.error = STATUS_FAILED, str(error)
        return outcome
    if prepared.command == "push-scores":
        if not isinstance(answer, Mapping) or ("students_count" not in answer and "responses_count" not in answer):
            outcome.status = STATUS_FAILED
            outcome.error = (
                f"the API answered without the saved counts ({_shape(answer)}); the batch may have been saved"
            )
            return outcome
        outcome.students_saved = _count(answer, "students_count")
        outcome.responses_saved = _count(answer, "responses_count")
        details = answer.get("rejected_responses_details") or []
        outcome.rejected_details = list(details) if isinstance(details, list) else [details]
        counted = _count(answer, "rejected_responses_count")
        outcome.rejected_count = counted if counted is not None else len(outcome.rejected_details)
        if outcome.rejected_count or outcome.rejected_details:
            outcome.status = STATUS_PARTIAL
    else:
        if not (isinstance(answer, Mapping) and answer.get("success") in (True, "true", 1, "1")):
            outcome.status = STATUS_FAILED
            outcome.error = f"the API did not answer success ({_shape(answer)}); the batch may not have been saved"
    return outcome


def _shape(answer: Any) -> str:
    if isinstance(answer, Mapping):
        return "an object with keys " + ", ".join(sorted(str(key) for key in answer)[:8])
    return "an empty answer" if answer is None else f"a {type(answer).__name__}"


def _rejected_rows(prepared: Prepared, start: int, end: int, details: Sequence[Any]) -> list[RowProblem]:
    """Maps the API's rejected items back to query rows (by student id, then date_taken and version)."""
    free = list(range(start, end))
    found: list[RowProblem] = []
    column = prepared.student_column
    for detail in details:
        student = str(detail.get(column)) if isinstance(detail, Mapping) and detail.get(column) is not None else None
        candidates = [i for i in free if student is not None and str(prepared.items[i].get(column)) == student]
        if len(candidates) > 1 and isinstance(detail, Mapping):
            exact = [
                i
                for i in candidates
                if all(
                    str(prepared.items[i].get(key)) == str(detail.get(key))
                    for key in ("date_taken", "version")
                    if key in detail
                )
            ]
            candidates = exact or candidates
        if candidates:
            free.remove(candidates[0])
            found.append(RowProblem(prepared.row_numbers[candidates[0]], student, "rejected by the API"))
        else:
            text = canonical_json(detail) if isinstance(detail, (Mapping, list)) else str(detail)
            found.append(RowProblem(0, student, f"rejected by the API (not matched to a row): {text[:200]}"))
    return found


def push(
    prepared: Prepared,
    duckdb_path: Path,
    client: Any,
    ranges: Sequence[tuple[int, int]],
    out: TextIO | None = None,
) -> PushReport:
    """Posts the prepared items batch by batch (`ranges` from `batch_ranges`), logging each batch's answer in the
    push log; stops at the first batch that fails.

    The caller holds the warehouse lock and has checked the push history. Progress goes to `out` (default stdout).
    """
    out = out or sys.stdout
    report = PushReport(uuid.uuid4().hex, len(ranges))
    instance = str(getattr(client, "base_url", ""))
    for number, (start, end) in enumerate(ranges, start=1):
        outcome = _send_batch(client, prepared, start, end, number)
        _log_batch(duckdb_path, prepared, instance, report.push_id, len(ranges), outcome)
        report.batches.append(outcome)
        rows = f"rows {outcome.first_row}-{outcome.last_row}"
        if outcome.status == STATUS_FAILED:
            report.failed = f"batch {number} of {len(ranges)} ({rows}) failed: {outcome.error}"
            break
        if prepared.command == "push-scores":
            print(
                f"  batch {number}/{len(ranges)} ({rows}): {outcome.rows_sent} sent, {_n(outcome.students_saved)}"
                f" students saved, {_n(outcome.responses_saved)} responses saved, {outcome.rejected_count} rejected",
                file=out,
                flush=True,
            )
            report.rejected.extend(_rejected_rows(prepared, start, end, outcome.rejected_details))
        else:
            print(f"  batch {number}/{len(ranges)} ({rows}): {outcome.rows_sent} sent, saved", file=out, flush=True)
    return report


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)


# ---------------------------------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------------------------------


def _local_id(text: str) -> str:
    value = text.strip()
    if not value or value in (".", ".."):
        raise argparse.ArgumentTypeError(f"{text!r} is not a local id")
    return value


def add_writeback_commands(subparsers: Any) -> None:
    """Adds `push-scores`, `push-repository` and `create-user-keys` to the sub-commands of `illuminate-sync`'s parser
    (`cli.build_parser`, the only parser: the commands share its one-line usage errors and exit codes)."""
    formatter = argparse.RawDescriptionHelpFormatter
    scores = subparsers.add_parser(
        "push-scores",
        help="post assessment scores from a DuckDB query to Illuminate",
        description=_wrap(
            "Post student scores to an assessment (Assessment/{id}/Scores/). The query must return"
            " local_student_id and responses (a list, e.g. ['A', 'C', '3'] in the version's question order), and"
            " may return version, text_responses (a list as long as responses) and date_taken (YYYY-MM-DD; default:"
            " today). Invalid rows are listed and not sent; valid rows are posted in batches. Pushing the same"
            " payload to the same assessment again is refused unless --force."
        ),
        epilog=EXIT_STATUS_HELP,
        formatter_class=formatter,
    )
    target = scores.add_mutually_exclusive_group(required=True)
    target.add_argument("--assessment-id", type=positive_int, metavar="N", help="the assessment's system id")
    target.add_argument(
        "--local-assessment-id", type=_local_id, metavar="ID", help="the assessment's local (district) id"
    )
    _add_push_arguments(scores)

    repository = subparsers.add_parser(
        "push-repository",
        help="post repository (summary assessment / demographic) data from a DuckDB query to Illuminate",
        description=_wrap(
            "Post rows to a repository (Repository/{id}/Data/). The query must return student_id and the"
            " repository's fields as field_<name> columns (one value each). Invalid rows are listed and not sent;"
            " valid rows are posted in batches. Pushing the same payload to the same repository again is refused"
            " unless --force (the API appends repository rows, so a second push would duplicate them)."
        ),
        epilog=EXIT_STATUS_HELP,
        formatter_class=formatter,
    )
    target = repository.add_mutually_exclusive_group(required=True)
    target.add_argument("--repository-id", type=positive_int, metavar="N", help="the repository's system id")
    target.add_argument("--local-repository-id", type=_local_id, metavar="ID", help="the repository's local id")
    _add_push_arguments(repository)

    keys = subparsers.add_parser(
        "create-user-keys",
        help="create (or return) a user's API key and secret",
        description=_wrap(
            f"Create, or return, the API key and secret of a user (CreateUserApiKeys/). The password is read from"
            f" {PASSWORD_ENV} or, when that is not set, asked for without echo; it is never taken from the command"
            " line. The key and secret are printed once to stdout. Exit status 0 on success, 1 when the API refuses"
            " (its error is printed) or a setting is missing, 2 on a usage error."
        ),
        formatter_class=formatter,
    )
    keys.add_argument("--username", required=True, metavar="U", help="the user's Illuminate user name")
    keys.add_argument("--verbose", action="store_true", help="log retries and requests")


def _wrap(text: str) -> str:
    return textwrap.fill(text, 100)


def _add_push_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--query", required=True, metavar="SQL", help="the SQL that returns the rows to push (runs read-only)"
    )
    parser.add_argument(
        "--duckdb",
        type=Path,
        required=True,
        metavar="PATH",
        help="the DuckDB file the query runs on (also holds the push log)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"rows per request (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate and print what would be sent; send nothing")
    parser.add_argument("--force", action="store_true", help="push even if this payload was already pushed")
    parser.add_argument("--verbose", action="store_true", help="log retries and requests")


def run_writeback_command(args: argparse.Namespace) -> int | None:
    """Runs a write-back command; None when `args.command` is not one. Errors are printed as one line."""
    command = getattr(args, "command", None)
    if command not in COMMANDS:
        return None
    try:
        if command == "create-user-keys":
            return command_create_user_keys(args)
        return command_push(args)
    except UsageError as error:
        print(f"illuminate-sync: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except IlluminateError as error:
        print(f"illuminate-sync: error: {error}", file=sys.stderr)
        return EXIT_FAILED


def _target(args: argparse.Namespace) -> Target:
    for kind in ("assessment_id", "local_assessment_id", "repository_id", "local_repository_id"):
        value = getattr(args, kind, None)
        if value is not None:
            return Target(kind, str(value))
    noun = "assessment" if args.command == "push-scores" else "repository"
    raise UsageError(f"no target: give --{noun}-id or --local-{noun}-id")


def command_push(
    args: argparse.Namespace,
    out: TextIO | None = None,
    client_factory: Callable[[], Any] | None = None,
) -> int:
    """`push-scores` / `push-repository`: query, validate, refuse a repeat, send in batches, log, report."""
    from illuminate_sync.pipelines.duckdb_warehouse import check_duckdb_database, warehouse_lock

    out = out or sys.stdout
    target = _target(args)
    duckdb_path: Path = args.duckdb
    if not duckdb_path.is_file():
        raise UsageError(f"the DuckDB file {duckdb_path} does not exist: pass --duckdb the file your query reads")
    check_duckdb_database(duckdb_path)
    with warehouse_lock(duckdb_path):
        columns, rows = read_query(duckdb_path, args.query)
        prepare = prepare_scores if args.command == "push-scores" else prepare_repository
        prepared = prepare(target, columns, rows)
        _print_validation(prepared, out)
        if not prepared.items:
            if prepared.rows_read == 0:
                print("the query returned no rows: nothing to push", file=out)
                return EXIT_OK
            print("no valid rows: nothing sent", file=out)
            return EXIT_FAILED
        history = push_history(duckdb_path, target, prepared.digest)
        everything = range(len(prepared.items))
        todo = list(everything) if args.force else [i for i in everything if i not in history.answered]
        ranges = batch_ranges(todo, args.batch_size)
        if args.dry_run:
            return _dry_run(prepared, ranges, history, args.force, out)
        if not todo:
            raise IlluminateError(
                f"this payload (sha256 {prepared.digest[:12]}) was already pushed to {target}, last at"
                f" {_when(history.last_pushed_at)} (push {str(history.last_push_id)[:8]} in {LOG_TABLE}): nothing"
                " sent; pass --force to push it again"
            )
        client = (client_factory or make_client)()
        try:
            if len(todo) < len(prepared.items):
                print(
                    f"resuming an earlier push of this payload: {len(prepared.items) - len(todo)} rows it delivered"
                    " are skipped (--force sends them again)",
                    file=out,
                )
            print(
                f"pushing {len(todo)} rows to {target} in {len(ranges)} batch(es) of up to {args.batch_size}"
                f" (payload sha256 {prepared.digest[:12]})",
                file=out,
                flush=True,
            )
            report = push(prepared, duckdb_path, client, ranges, out)
        finally:
            client.close()
    return _finish(prepared, report, out)


def _when(moment: datetime | None) -> str:
    return "an unknown time" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _print_validation(prepared: Prepared, out: TextIO) -> None:
    print(
        f"the query returned {prepared.rows_read} rows: {len(prepared.items)} valid, {len(prepared.problems)} not sent",
        file=out,
    )
    if prepared.problems:
        print("rows not sent (invalid):", file=out)
        for problem in prepared.problems:
            print(f"  {problem.render(prepared.student_column)}", file=out)


def _dry_run(prepared: Prepared, ranges: list[tuple[int, int]], history: PushHistory, force: bool, out: TextIO) -> int:
    todo = sum(end - start for start, end in ranges)
    if history.complete(len(prepared.items)) and not force:
        print(
            f"dry run, nothing sent: this payload was already pushed to {prepared.target} (last at"
            f" {_when(history.last_pushed_at)}); without --force it would be refused",
            file=out,
        )
        return EXIT_FAILED
    skipped = len(prepared.items) - todo
    if skipped:
        print(f"note: {skipped} rows were delivered by an earlier push of this payload and would be skipped", file=out)
    print(
        f"dry run, nothing sent: would POST {todo} rows to {prepared.target.path} ({prepared.target}) in"
        f" {len(ranges)} batch(es) (payload sha256 {prepared.digest[:12]})",
        file=out,
    )
    for number, (start, end) in enumerate(ranges, start=1):
        first, last = prepared.row_numbers[start], prepared.row_numbers[end - 1]
        print(f"batch {number} of {len(ranges)} (rows {first}-{last}):", file=out)
        for item in prepared.items[start:end]:
            print(f"  {canonical_json(item)}", file=out)
    return EXIT_FAILED if prepared.problems else EXIT_OK


def _finish(prepared: Prepared, report: PushReport, out: TextIO) -> int:
    if report.rejected:
        print("rows rejected by the API:", file=out)
        for problem in report.rejected:
            print(f"  {problem.render(prepared.student_column)}", file=out)
        print(
            "  (the API gives no reason: check that each student exists, and that the number of responses and the"
            " version match the assessment)",
            file=out,
        )
    delivered = sum(batch.rows_sent for batch in report.batches if batch.status != STATUS_FAILED)
    print(
        f"{delivered} rows delivered in {len(report.batches)} of {report.batch_count} batches,"
        f" {len(report.rejected)} rejected by the API, {len(prepared.problems)} not sent (invalid); logged in"
        f" {LOG_TABLE} (push {report.push_id[:8]})",
        file=out,
    )
    if report.failed:
        raise IlluminateError(
            f"{report.failed}; the batches before it were delivered and are logged in {LOG_TABLE}: fix the problem"
            " and run the same command again to send the rest (delivered rows are skipped)"
        )
    return EXIT_FAILED if report.rejected or prepared.problems else EXIT_OK


def read_password(environ: Mapping[str, str] | None = None, prompt: Callable[[str], str] | None = None) -> str:
    """The user's password: `ILLUMINATE_USER_PASSWORD` when set and not empty, else asked for without echo."""
    environ = os.environ if environ is None else environ
    prompt = prompt or getpass.getpass
    password = environ.get(PASSWORD_ENV) or ""
    if not password:
        try:
            password = prompt("Illuminate password of the user: ")
        except EOFError:
            password = ""
    if not password:
        raise UsageError(f"no password: set {PASSWORD_ENV} or type it at the prompt")
    return password


def create_user_keys(client: Any, username: str, password: str) -> dict[str, str]:
    """Calls `CreateUserApiKeys/` and returns `user_id`, `user_api_key` and `user_api_secret` as text.

    Raises:
        IlluminateError: The API refused (its error message, without the password) or answered unexpectedly.
    """
    try:
        answer = client.post_json("CreateUserApiKeys/", form={"username": username, "password": password})
    except IlluminateError as error:
        message = str(error).replace(password, "***")
        raise IlluminateError(f"creating API keys for user {username!r} failed: {message}") from None
    if not isinstance(answer, Mapping) or not answer.get("user_api_key") or not answer.get("user_api_secret"):
        detail = ""
        if isinstance(answer, Mapping) and isinstance(answer.get("error"), Mapping):
            detail = f": {answer['error'].get('message') or answer['error'].get('code')}"
        message = f"creating API keys for user {username!r} failed: the API answered without a key and secret{detail}"
        raise IlluminateError(message.replace(password, "***"))
    return {name: str(answer.get(name, "")) for name in ("user_id", "user_api_key", "user_api_secret")}


def command_create_user_keys(
    args: argparse.Namespace,
    out: TextIO | None = None,
    client_factory: Callable[[], Any] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> int:
    """`create-user-keys`: prints the user's id, key and secret once to stdout."""
    out = out or sys.stdout
    username = str(args.username or "").strip()
    if not username:
        raise UsageError("--username is empty: give the user's Illuminate user name")
    password = read_password(prompt=prompt)
    client = (client_factory or make_client)()
    try:
        keys = create_user_keys(client, username, password)
    finally:
        client.close()
    print(f"user_id: {keys['user_id']}", file=out)
    print(f"user_api_key: {keys['user_api_key']}", file=out)
    print(f"user_api_secret: {keys['user_api_secret']}", file=out, flush=True)
    print(
        "these are shown once: store them safely (they sign requests as this user: the key is the OAuth1 token, the"
        " secret its token secret)",
        file=sys.stderr,
    )
    return EXIT_OK
