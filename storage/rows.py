"""What every repository shares: rows to dataclasses, and INSERTs that understand ON CONFLICT."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import DbConnection

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Model = TypeVar("Model", bound="DataclassInstance")
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


class Repo:
    """A repository over one connection, and so one transaction."""

    def __init__(self, connection: DbConnection) -> None:
        self.c = connection

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that understands ON CONFLICT on both backends."""
        return insert_for(self.c.dialect.name, table)
