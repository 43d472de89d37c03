"""Every place that names a person is declared by some feature, with what erasure does there."""

from __future__ import annotations

from collections import defaultdict

import pytest

from handlers.features import REGISTRY
from handlers.registry import CLEAR, DELETE, KEEP, PersonalData
from storage import schema as t

# Tables the engine itself owns that name a person without a foreign key: none today. A table
# listed here is one the engine erases on its own (handlers/privacy/rules.py).
ENGINE_OWNED: frozenset[tuple[str, str]] = frozenset()


def columns_naming_a_person() -> set[tuple[str, str]]:
    return {
        (table.name, column.name)
        for table in t.metadata.sorted_tables
        for column in table.columns
        if any(fk.column is t.users.c.id for fk in column.foreign_keys)
    }


def test_every_column_naming_a_person_is_declared() -> None:
    declared = {(d.table, d.person_column) for d in REGISTRY.personal_data}
    missing = columns_naming_a_person() - declared - ENGINE_OWNED
    assert not missing, f"declare these in a feature's personal_data (with what erasure does): {missing}"
    # And the person's own row.
    assert ("users", "id") in declared


def test_declarations_name_real_columns() -> None:
    for declared in REGISTRY.personal_data:
        table = t.metadata.tables[declared.table]
        assert declared.person_column in table.c, declared
        for column in (*declared.clear, *(declared.columns or ())):
            assert column in table.c, declared
            if column in declared.clear:
                assert table.c[column].nullable, f"{declared.table}.{column} cannot be cleared"


def test_features_declaring_the_same_rows_agree_on_erasure() -> None:
    actions: dict[tuple[str, str], set[tuple[str, tuple[str, ...]]]] = defaultdict(set)
    for declared in REGISTRY.personal_data:
        actions[(declared.table, declared.person_column)].add((declared.erase, declared.clear))
    assert {place: found for place, found in actions.items() if len(found) > 1} == {}


def test_a_declaration_must_say_what_erasure_does() -> None:
    with pytest.raises(ValueError, match="erase must be one of"):
        PersonalData("reports", "reporter_id", "reports", "forget")
    with pytest.raises(ValueError, match="CLEAR, and only CLEAR"):
        PersonalData("users", "id", "profile", CLEAR)
    with pytest.raises(ValueError, match="CLEAR, and only CLEAR"):
        PersonalData("users", "id", "profile", DELETE, clear=("building",))
    assert PersonalData("users", "id", "profile", KEEP).key == "mydata.held.users.id"
