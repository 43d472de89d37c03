"""What every repository shares: rows to dataclasses, and INSERTs that understand ON CONFLICT."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from functools import cache
from types import CodeType
from typing import TYPE_CHECKING, Any, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import DbConnection

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Model = TypeVar("Model", bound="DataclassInstance")
Statement = TypeVar("Statement")
Insert = Callable[[sa.Table], Any]
# A row of any number of columns (a Row is generic over the types of its columns).
AnyRow = sa.Row[*tuple[Any, ...]]


def to_model(model: type[Model], row: AnyRow | None) -> Model | None:
    if row is None:
        return None
    return from_mapping(model, row._mapping)


def from_mapping(model: type[Model], mapping: Mapping[Any, Any], prefix: str = "") -> Model:
    """The model from a row's columns, named with `prefix` where a join brought two tables."""
    return model(**{name: mapping[prefix + name] for name in _field_names(model)})


@cache
def _field_names(model: type[DataclassInstance]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(model))


def all_models(model: type[Model], rows: Iterable[AnyRow]) -> list[Model]:
    return [from_mapping(model, row._mapping) for row in rows]


def insert_for(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that understands ON CONFLICT on this backend."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


# Prebuilt statements by the code of the lambda that builds them and the dialect.
_prebuilt: dict[tuple[CodeType, str], Any] = {}


class Repo:
    """A repository over one connection, and so one transaction."""

    def __init__(self, connection: DbConnection) -> None:
        self.c = connection

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that understands ON CONFLICT on both backends."""
        return insert_for(self.c.dialect.name, table)

    @overload
    def prebuilt(self, build: Callable[[], Statement]) -> Statement: ...
    @overload
    def prebuilt(self, build: Callable[[Insert], Statement]) -> Statement: ...
    def prebuilt(self, build: Callable[..., Statement]) -> Statement:
        """The statement `build` returns, built on its first use only: for the statements of hot paths.

        Building a statement and its cache key costs SQLAlchemy more than SQLite takes to
        run it: selecting a user by id took 224 µs of CPU built per call and 46 µs prebuilt
        (on the shared 2-core host of 2026-12-07). Prebuilt, the hot paths measured by
        bench/throughput.py and bench/ledger.py keep their figures; each says so where it runs.
        The lambda is written where the statement runs, takes its values as named bind
        parameters (never from the method's variables) and, for an ON CONFLICT, receives the
        backend's `insert`.
        """
        key = (build.__code__, self.c.dialect.name)
        statement = _prebuilt.get(key)
        if statement is None:
            if build.__closure__:
                raise TypeError("a prebuilt statement takes its values as bind parameters")
            statement = build(self._insert) if build.__code__.co_argcount else build()
            _prebuilt[key] = statement
        return statement
