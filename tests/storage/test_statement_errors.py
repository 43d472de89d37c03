"""A failed statement's error names the statement, not its values: errors are logged with their
tracebacks, and the values are residents' texts, names and phone numbers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from storage.db import Database


async def test_a_failed_statement_does_not_quote_its_parameters(database_url: str) -> None:
    database = Database(database_url)
    try:
        with pytest.raises(sa.exc.DBAPIError) as failed:
            async with database.transaction() as connection:
                await connection.execute(
                    sa.text("INSERT INTO no_such_table (x) VALUES (:x)"), {"x": "请联系 13912345678"}
                )
        assert "no_such_table" in str(failed.value)
        assert "13912345678" not in str(failed.value)
    finally:
        await database.close()
