"""What happens to direct identifiers (names, emails, phones, addresses, birth dates, contact details).

`keep` loads them as sent; `exclude` drops them before anything reaches disk; `hash` replaces each with a keyed
hash (HMAC-SHA256 with a secret key), so a de-identified warehouse can be shared and still joined: the same value
hashes the same in every table and every run with the same key. Which columns are identifiers is declared per
endpoint in `endpoints.toml` (`pii_columns`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from .catalog import ColumnType, Endpoint
from .errors import ConfigurationError

PiiMode = Literal["keep", "hash", "exclude"]
PII_MODES: tuple[PiiMode, ...] = ("keep", "hash", "exclude")
NULL_TEXT = frozenset({"", "NULL", "null"})
HASH_HEX_CHARS = 32
"""Hashes are shortened to 128 bits: collisions stay negligible for a district's values."""


@dataclass(frozen=True)
class PiiPolicy:
    """How identifiers are written. Build it with `PiiPolicy.create`, which validates the mode and the key."""

    mode: PiiMode = "keep"
    key: bytes = b""

    @classmethod
    def create(cls, mode: str, key: str | None) -> PiiPolicy:
        if mode not in PII_MODES:
            raise ConfigurationError(f"--pii {mode!r} is not a mode: use one of {', '.join(PII_MODES)}")
        if mode == "hash" and not key:
            raise ConfigurationError(
                "--pii hash needs a key: set SOURCES__ILLUMINATE__PII_HASH_KEY (a long random secret, kept like a "
                "password; the same key gives the same hashes, so keep it to join later loads)"
            )
        return cls(mode, (key or "").encode())  # type: ignore[arg-type]

    def column_types(self, endpoint: Endpoint, columns: Mapping[str, ColumnType]) -> dict[str, ColumnType]:
        """The declared columns as they are written: identifiers dropped, or text when hashed."""
        if self.mode == "keep":
            return dict(columns)
        identifiers = set(endpoint.pii_columns)
        if self.mode == "exclude":
            return {name: kind for name, kind in columns.items() if name not in identifiers}
        return {name: ("text" if name in identifiers else kind) for name, kind in columns.items()}

    def apply(self, endpoint: Endpoint, table: pa.Table) -> pa.Table:
        """The table with the endpoint's identifiers dropped or hashed."""
        if self.mode == "keep" or not endpoint.pii_columns:
            return table
        for name in endpoint.pii_columns:
            if name not in table.column_names:
                continue
            index = table.column_names.index(name)
            if self.mode == "exclude":
                table = table.remove_column(index)
            else:
                values = [self.hash_value(value) for value in table.column(name).to_pylist()]
                table = table.set_column(index, name, pa.array(values, type=pa.string()))
        return table

    def apply_to_record(self, endpoint: Endpoint, record: Mapping[str, Any]) -> dict[str, Any]:
        """A raw record (wire names) with its identifiers dropped or hashed, for the quarantine table."""
        if self.mode == "keep":
            return dict(record)
        identifiers = set(endpoint.pii_columns)
        cleaned: dict[str, Any] = {}
        for name, value in record.items():
            if endpoint.aliases.get(name, name) not in identifiers:
                cleaned[name] = value
            elif self.mode == "hash":
                cleaned[name] = self.hash_value(value)
        return cleaned

    def hash_value(self, value: Any) -> str | None:
        if value is None or value in NULL_TEXT:
            return None
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()[:HASH_HEX_CHARS]
