"""Link codes claimed by one account only, links recorded so they can be undone, invites withdrawn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.repositories import Repos

NOW = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)


async def test_a_claimed_code_belongs_to_its_claimer_and_is_used_once(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        repos = Repos(connection)
        owner = await repos.users.create("王芳", NOW)
        claimer = await repos.users.create("Wang Fang", NOW)
        other = await repos.users.create("someone", NOW)
        await repos.links.create("ABCD2345", owner.id, NOW, NOW + timedelta(minutes=10))
        assert await repos.links.use("ABCD2345", owner.id, NOW - timedelta(minutes=10), NOW) is None
        assert await repos.links.claim("ABCD2345", claimer.id, NOW)
        assert not await repos.links.claim("ABCD2345", other.id, NOW)
        # Only the maker uses it, only after a claim recent enough, and only once.
        assert await repos.links.use("ABCD2345", claimer.id, NOW - timedelta(minutes=10), NOW) is None
        assert await repos.links.use("ABCD2345", owner.id, NOW, NOW) is None
        assert await repos.links.use("ABCD2345", owner.id, NOW - timedelta(minutes=10), NOW) == claimer.id
        assert await repos.links.use("ABCD2345", owner.id, NOW - timedelta(minutes=10), NOW) is None
        assert await repos.links.valid("ABCD2345", NOW) is None


async def test_a_recorded_link_splits_its_identities_off_once(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        repos = Repos(connection)
        keep = await repos.users.create("王芳", NOW)
        drop = await repos.users.create("Wang Fang", NOW)
        await repos.users.add_identity("console", "wang", keep.id, "wang", NOW)
        await repos.users.add_identity("telegram", "42", drop.id, "42", NOW)
        await repos.conversations.save(drop.id, "telegram", "report", "category", {}, NOW)
        await repos.links.merge_users(keep=keep.id, drop=drop.id, now=NOW)
        link_id = await repos.links.record(keep.id, drop, [("telegram", "42")], NOW)
        assert [link.id for link in await repos.links.recent_links(5)] == [link_id]
        link = await repos.links.link_bringing("telegram", "42")
        assert link is not None and link.former_name == "Wang Fang" and link.former_role == "resident"
        assert await repos.links.link_bringing("console", "wang") is None

        split = await repos.users.create(link.former_name, NOW)
        assert await repos.links.split_off(link, split.id, NOW) == [("telegram", "42")]
        assert [i.external_id for i in await repos.users.identities(keep.id)] == ["wang"]
        assert [i.external_id for i in await repos.users.identities(split.id)] == ["42"]
        assert await repos.conversations.get(keep.id, "telegram") is None
        # Once: a second undo moves nothing.
        assert await repos.links.split_off(link, split.id, NOW) == []
        assert await repos.links.recent_links(5) == []


async def test_invites_withdrawn_are_neither_outstanding_nor_redeemable(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        repos = Repos(connection)
        police = await repos.users.create("张警官", NOW, role="police")
        admin = await repos.users.create("周管理员", NOW, role="admin")
        later = NOW + timedelta(hours=72)
        await repos.invites.create("mine", "volunteer", None, police.id, NOW, later)
        await repos.invites.create("theirs", "police", None, admin.id, NOW + timedelta(minutes=1), later)
        await repos.invites.create("old", "volunteer", None, police.id, NOW - timedelta(days=9), NOW)
        assert [i.code for i in await repos.invites.outstanding(NOW)] == ["theirs", "mine"]
        assert [i.code for i in await repos.invites.outstanding(NOW, police.id)] == ["mine"]
        assert await repos.invites.withdraw("mine", NOW)
        assert not await repos.invites.withdraw("mine", NOW)
        assert not await repos.invites.redeem("mine", admin.id, NOW)
        assert [i.code for i in await repos.invites.outstanding(NOW)] == ["theirs"]
        withdrawn = await repos.invites.get("mine")
        assert withdrawn is not None and withdrawn.withdrawn_at == NOW
