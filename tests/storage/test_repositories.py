"""Repos: a feature's own repository is reached without editing Repos, bound to the transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from storage.db import Database
from storage.repositories import Repos
from storage.rows import Repo

NOW = datetime(2026, 12, 7, tzinfo=UTC)


class CountingRepo(Repo):
    """A repository as a new feature would write it."""

    async def people(self) -> int:
        return int((await self.c.execute(sa.text("SELECT count(*) FROM users"))).scalar_one())


async def test_a_features_repository_is_bound_to_the_transaction_once(database_url: str) -> None:
    database = Database(database_url)
    await database.migrate()
    async with database.transaction() as connection:
        repos = Repos(connection)
        counting = repos.of(CountingRepo)
        assert repos.of(CountingRepo) is counting
        assert counting.c is connection
        before = await counting.people()
        await repos.users.create("王阿姨", NOW)
        assert await counting.people() == before + 1  # the same transaction sees its own write
    async with database.transaction() as connection:
        assert Repos(connection).of(CountingRepo) is not counting
    await database.close()
