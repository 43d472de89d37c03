"""The engine's unit of work and the registry's kinds: one transaction, delivery woken only for new rows,
and outbox rows or schedules of kinds no feature declares refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from handlers.clock import FakeClock
from handlers.features import FEATURES, REGISTRY
from handlers.media import MediaStore
from handlers.messages import Reply, Text, reply_to_json
from handlers.registry import MESSAGE, Feature, Registry
from handlers.router import Engine
from storage.db import Database
from storage.kinds import UnknownKind
from storage.repositories import Repos
from tests import harness


class Boom(Exception):
    pass


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Engine, list[int]]]:
    database = Database(database_url)
    await database.migrate()
    woken: list[int] = []
    engine = Engine(
        database,
        harness.test_community(),
        FakeClock(),
        MediaStore(tmp_path / "media"),
        lambda: woken.append(1),
    )
    yield engine, woken
    await database.close()


async def _message(repos: Repos, kind: str = MESSAGE) -> int:
    payload = reply_to_json(Reply(Text("help.hint")))
    return await repos.outbox.enqueue("console", "someone", "zh_CN", kind, payload, FakeClock().now())


async def test_run_commits_and_wakes_delivery_when_rows_were_queued(engine: tuple[Engine, list[int]]) -> None:
    run, woken = engine
    row_id = await run.run(_message)
    assert woken == [1]
    rows = await run.run(lambda repos: repos.outbox.all())
    assert [row.id for row in rows] == [row_id]
    assert woken == [1]  # reading queued nothing: nobody is woken


async def test_run_rolls_back_everything_on_error(engine: tuple[Engine, list[int]]) -> None:
    run, woken = engine

    async def fails_after_writing(repos: Repos) -> None:
        await _message(repos)
        await repos.users.create("someone", FakeClock().now())
        raise Boom()

    with pytest.raises(Boom):
        await run.run(fails_after_writing)
    assert woken == []
    assert await run.run(lambda repos: repos.outbox.all()) == []
    assert await run.run(lambda repos: repos.users.with_roles(["resident"])) == []


async def test_unknown_outbox_kind_is_refused_when_queued(engine: tuple[Engine, list[int]]) -> None:
    run, woken = engine
    with pytest.raises(UnknownKind, match="'no_such_kind'"):
        await run.run(lambda repos: _message(repos, "no_such_kind"))
    assert woken == []
    assert await run.run(lambda repos: repos.outbox.all()) == []
    # Kinds a feature declares, and the engine's own, are accepted.
    await run.run(lambda repos: _message(repos, "card"))
    await run.run(_message)


async def test_unknown_schedule_kind_is_refused_when_armed(engine: tuple[Engine, list[int]]) -> None:
    run, _ = engine
    due = FakeClock().now() + timedelta(hours=1)
    with pytest.raises(UnknownKind, match="'no_such_schedule'"):
        await run.run(lambda repos: repos.schedules.arm("no_such_schedule", "1", due))
    assert await run.run(lambda repos: repos.schedules.due(due)) == []
    await run.run(lambda repos: repos.schedules.arm("report_reminder", "1", due))


async def test_start_up_refuses_stored_rows_of_unknown_kinds(engine: tuple[Engine, list[int]]) -> None:
    run, _ = engine
    await run.prepare()
    # A row of a kind that a feature declared once but the running version no longer does.
    async with run.database.transaction() as connection:
        await Repos(connection).outbox.enqueue("console", "x", "zh_CN", "summary", {}, FakeClock().now())
    without = Registry(tuple(feature for feature in FEATURES if "summary" not in feature.outbox))
    older = Engine(run.database, run.community, run.clock, run.media, registry=without)
    with pytest.raises(UnknownKind, match="'summary'"):
        await older.prepare()
    await run.prepare()


async def test_start_up_refuses_stored_schedules_of_unknown_kinds(engine: tuple[Engine, list[int]]) -> None:
    run, _ = engine
    async with run.database.transaction() as connection:
        await Repos(connection).schedules.arm("gone_schedule", "1", FakeClock().now())
    with pytest.raises(UnknownKind, match="'gone_schedule'"):
        await run.prepare()
    # Nor is it fired (and so lost) by a tick: it stays pending for a version that knows it.
    assert await run.fire_due() == 0
    pending = await run.run(lambda repos: repos.schedules.pending_of("gone_schedule"))
    assert len(pending) == 1


def test_registry_checks_kinds_against_declarations() -> None:
    REGISTRY.check_outbox_kind(MESSAGE)
    REGISTRY.check_outbox_kind("card_edit")
    REGISTRY.check_schedule_kind("digest")
    with pytest.raises(UnknownKind):
        REGISTRY.check_outbox_kind("nope")
    with pytest.raises(UnknownKind):
        REGISTRY.check_schedule_kind(MESSAGE)  # the engine's outbox kind is no schedule


def test_registry_refuses_a_name_claimed_twice() -> None:
    async def fire(*_: object) -> None:
        return None

    one = Feature(name="one", schedules={"tick": fire})
    other = Feature(name="other", schedules={"tick": fire})
    with pytest.raises(RuntimeError, match="'tick'"):
        Registry((one, other))
    with pytest.raises(RuntimeError, match="'help'"):
        Registry((Feature(name="x", commands={"help": fire}),), ("help",))
