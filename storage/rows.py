"""What every repository shares: rows to dataclasses, and INSERTs that understand ON CONFLICT."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

Row = TypeVar("Row")


def to_model(model: type[Row], row: sa.Row[Any] | None) -> Row | None:
    if row is None:
        return None
    mapping = row._mapping
    return model(**{f.name: mapping[f.name] for f in fields(model)})  # type: ignore[arg-type]


def all_models(model: type[Row], rows: Iterable[sa.Row[Any]]) -> list[Row]:
    return [to_model(model, row) for row in rows]  # type: ignore[misc]


class Repo:
    """A repository over one connection, and so one transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.c = connection

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that understands ON CONFLICT on both backends."""
        if self.c.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)
