"""What every repository shares: rows to dataclasses, and INSERTs that understand ON CONFLICT."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from functools import cache
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import DbConnection

Row = TypeVar("Row")


def to_model(model: type[Row], row: sa.Row[Any] | None) -> Row | None:
    if row is None:
        return None
    return from_mapping(model, row._mapping)


def from_mapping(model: type[Row], mapping: Any, prefix: str = "") -> Row:
    """The model from a row's columns, named with `prefix` where a join brought two tables."""
    return model(**{name: mapping[prefix + name] for name in _field_names(model)})


@cache
def _field_names(model: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(model))


def all_models(model: type[Row], rows: Iterable[sa.Row[Any]]) -> list[Row]:
    return [to_model(model, row) for row in rows]  # type: ignore[misc]


def param(name: str, expanding: bool = False) -> Any:
    """A named placeholder of a statement built once and run with different values.

    Building a SQLAlchemy statement (and its cache key) costs more CPU than SQLite
    takes to run it, so the statements of every update are module constants.
    """
    return sa.bindparam(name, expanding=expanding)


def insert_for(dialect: str, table: sa.Table) -> Any:
    """An INSERT that understands ON CONFLICT on this backend."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


class Repo:
    """A repository over one connection, and so one transaction."""

    def __init__(self, connection: DbConnection) -> None:
        self.c = connection

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that understands ON CONFLICT on both backends."""
        return insert_for(self.c.dialect.name, table)
