"""People: users, their identities on each channel, grid assignments, invites and account links.

Every method takes the moment it acts at from the caller, so the domain's
clock, not the database server's, decides what time it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam

from storage import schema as t
from storage.db import DbConnection
from storage.ledger import REASON_REDEMPTION_MERGED, LedgerRepo, redemption_ref
from storage.models import Conversation, Identity, Invite, User
from storage.rewards import PENDING, REJECTED
from storage.roles import GRID_WORKER, RESIDENT
from storage.rows import Repo, all_models, to_model

_IDENTITY_COLUMNS = (
    t.identities.c.channel,
    t.identities.c.external_id,
    t.identities.c.user_id,
    t.identities.c.chat_id,
    t.identities.c.last_seen_at,
    t.identities.c.blocked_at,
)


class UserRepo(Repo):
    """People and their identities. Statements run for most updates (bench/throughput.py) are prebuilt."""

    async def create(self, display_name: str, now: datetime, role: str = RESIDENT) -> User:
        insert = self.prebuilt(lambda: t.users.insert().returning(t.users.c.id))
        values = {"display_name": display_name[:128], "role": role, "created_at": now}
        user_id = (await self.c.execute(insert, values)).scalar_one()
        user = await self.get(user_id)
        assert user is not None
        return user

    async def get(self, user_id: int) -> User | None:
        select = self.prebuilt(lambda: sa.select(t.users).where(t.users.c.id == bindparam("user_id")))
        row = (await self.c.execute(select, {"user_id": user_id})).first()
        return to_model(User, row)

    async def many(self, user_ids: Sequence[int]) -> dict[int, User]:
        select = self.prebuilt(
            lambda: sa.select(t.users).where(t.users.c.id.in_(bindparam("user_ids", expanding=True)))
        )
        rows = await self.c.execute(select, {"user_ids": list(user_ids)})
        return {user.id: user for user in all_models(User, rows)}

    async def update(self, user_id: int, **values: Any) -> None:
        # The UPDATE sets the columns it is run with; the id ends in "_" so it is not taken for one.
        update = self.prebuilt(lambda: t.users.update().where(t.users.c.id == bindparam("user_id_")))
        await self.c.execute(update, {"user_id_": user_id, **values})
        if "grid_key" in values:
            # The points leaderboard of a grid reads a copy of the grid (see schema.point_earnings).
            await self.c.execute(
                t.point_earnings.update()
                .where(t.point_earnings.c.user_id == user_id)
                .values(grid_key=values["grid_key"])
            )

    async def by_identity(self, channel: str, external_id: str) -> tuple[User, Identity] | None:
        row = (
            await self.c.execute(
                sa.select(t.users, *_IDENTITY_COLUMNS)
                .join(t.identities, t.identities.c.user_id == t.users.c.id)
                .where(t.identities.c.channel == channel, t.identities.c.external_id == external_id)
            )
        ).first()
        if row is None:
            return None
        user = to_model(User, row)
        identity = to_model(Identity, row)
        assert user is not None and identity is not None
        return user, identity

    async def by_identity_with_draft(
        self, channel: str, external_id: str
    ) -> tuple[User, Identity, Conversation | None] | None:
        """The person, their identity and their conversation on this channel, in one round trip."""
        select = self.prebuilt(
            lambda: (
                sa.select(
                    t.users,
                    *_IDENTITY_COLUMNS,
                    t.conversations.c.flow.label("draft_flow"),
                    t.conversations.c.step.label("draft_step"),
                    t.conversations.c.data.label("draft_data"),
                    t.conversations.c.updated_at.label("draft_updated_at"),
                )
                .join(t.identities, t.identities.c.user_id == t.users.c.id)
                .outerjoin(
                    t.conversations,
                    (t.conversations.c.user_id == t.users.c.id)
                    & (t.conversations.c.channel == bindparam("channel")),
                )
                .where(
                    t.identities.c.channel == bindparam("channel"),
                    t.identities.c.external_id == bindparam("external_id"),
                )
            )
        )
        row = (await self.c.execute(select, {"channel": channel, "external_id": external_id})).first()
        if row is None:
            return None
        user = to_model(User, row)
        identity = to_model(Identity, row)
        assert user is not None and identity is not None
        conversation = None
        if row.draft_flow is not None:
            conversation = Conversation(
                user.id, channel, row.draft_flow, row.draft_step, row.draft_data, row.draft_updated_at
            )
        return user, identity, conversation

    async def add_identity(
        self, channel: str, external_id: str, user_id: int, chat_id: str | None, now: datetime
    ) -> None:
        values = {
            "channel": channel,
            "external_id": external_id,
            "user_id": user_id,
            "chat_id": chat_id,
            "last_seen_at": now,
        }
        await self.c.execute(self.prebuilt(lambda: t.identities.insert()), values)

    async def touch_identity(
        self, channel: str, external_id: str, chat_id: str | None, now: datetime
    ) -> None:
        i = t.identities.c
        await self.c.execute(
            t.identities.update()
            .where(i.channel == channel, i.external_id == external_id)
            .values(chat_id=chat_id, last_seen_at=now, blocked_at=None)
        )

    async def mark_blocked(self, channel: str, chat_id: str, now: datetime) -> None:
        """The person behind this private chat blocked the bot: broadcasts skip them until they write."""
        i = t.identities.c
        await self.c.execute(
            t.identities.update()
            .where(i.channel == channel, i.chat_id == chat_id, i.blocked_at.is_(None))
            .values(blocked_at=now)
        )

    async def identities(self, user_id: int) -> list[Identity]:
        select = self.prebuilt(
            lambda: (
                sa.select(t.identities)
                .where(t.identities.c.user_id == bindparam("user_id"))
                .order_by(t.identities.c.last_seen_at.desc())
            )
        )
        rows = await self.c.execute(select, {"user_id": user_id})
        return all_models(Identity, rows)

    async def assign_grid(self, user_id: int, grid_key: str) -> None:
        stmt = self._insert(t.grid_assignments).values(user_id=user_id, grid_key=grid_key)
        await self.c.execute(stmt.on_conflict_do_nothing())

    async def grids_of(self, user_id: int) -> list[str]:
        g = t.grid_assignments.c
        rows = await self.c.execute(sa.select(g.grid_key).where(g.user_id == user_id).order_by(g.grid_key))
        return list(rows.scalars())

    async def workers_of_grid(self, grid_key: str) -> list[User]:
        select = self.prebuilt(
            lambda: (
                sa.select(t.users)
                .join(t.grid_assignments, t.grid_assignments.c.user_id == t.users.c.id)
                .where(t.grid_assignments.c.grid_key == bindparam("grid_key"), t.users.c.role == GRID_WORKER)
                .order_by(t.users.c.id)
            )
        )
        rows = await self.c.execute(select, {"grid_key": grid_key})
        return all_models(User, rows)

    async def drop_grids(self, user_id: int) -> list[str]:
        """Take every grid from this person (their role was taken back); the grids they had."""
        grids = await self.grids_of(user_id)
        await self.c.execute(t.grid_assignments.delete().where(t.grid_assignments.c.user_id == user_id))
        return grids

    async def with_roles(self, roles: Iterable[str]) -> list[User]:
        rows = await self.c.execute(
            sa.select(t.users).where(t.users.c.role.in_(list(roles))).order_by(t.users.c.id)
        )
        return all_models(User, rows)


class InviteRepo(Repo):
    async def create(
        self, code: str, role: str, grid_key: str | None, created_by: int, now: datetime, expires_at: datetime
    ) -> None:
        await self.c.execute(
            t.invites.insert().values(
                code=code,
                role=role,
                grid_key=grid_key,
                created_by=created_by,
                created_at=now,
                expires_at=expires_at,
            )
        )

    async def get(self, code: str) -> Invite | None:
        row = (await self.c.execute(sa.select(t.invites).where(t.invites.c.code == code))).first()
        return to_model(Invite, row)

    async def redeem(self, code: str, user_id: int, now: datetime) -> bool:
        """Mark the invite used; False if someone else used it first, it expired or was withdrawn."""
        i = t.invites.c
        result = await self.c.execute(
            t.invites.update()
            .where(i.code == code, i.used_by.is_(None), i.withdrawn_at.is_(None), i.expires_at > now)
            .values(used_by=user_id, used_at=now)
        )
        return result.rowcount == 1

    async def outstanding(self, now: datetime, created_by: int | None = None) -> list[Invite]:
        """Invites nobody has used, withdrawn or let expire, newest first (of one maker, if given)."""
        i = t.invites.c
        query = (
            sa.select(t.invites)
            .where(i.used_by.is_(None), i.withdrawn_at.is_(None), i.expires_at > now)
            .order_by(i.created_at.desc(), i.code)
        )
        if created_by is not None:
            query = query.where(i.created_by == created_by)
        return all_models(Invite, await self.c.execute(query))

    async def withdraw(self, code: str, now: datetime) -> bool:
        """Take an unused invite back; False if it was used or withdrawn meanwhile."""
        i = t.invites.c
        result = await self.c.execute(
            t.invites.update()
            .where(i.code == code, i.used_by.is_(None), i.withdrawn_at.is_(None))
            .values(withdrawn_at=now)
        )
        return result.rowcount == 1


@dataclass(frozen=True)
class LinkCode:
    code: str
    user_id: int
    expires_at: datetime
    claimed_by: int | None
    claimed_at: datetime | None


@dataclass(frozen=True)
class AccountLink:
    id: int
    user_id: int
    former_user_id: int
    former_name: str
    identities: list[list[str]]
    former_role: str
    linked_at: datetime
    undone_at: datetime | None
    undone_into: int | None


class LinkRepo(Repo):
    """Link codes, and merging the two people one person turned out to be."""

    def __init__(self, connection: DbConnection, ledger: LedgerRepo) -> None:
        super().__init__(connection)
        self.ledger = ledger

    async def create(self, code: str, user_id: int, now: datetime, expires_at: datetime) -> None:
        await self.c.execute(
            t.link_codes.insert().values(code=code, user_id=user_id, created_at=now, expires_at=expires_at)
        )

    async def valid(self, code: str, now: datetime) -> LinkCode | None:
        """The code if it is neither used nor expired."""
        link = t.link_codes.c
        row = (
            await self.c.execute(
                sa.select(t.link_codes).where(
                    link.code == code, link.used_at.is_(None), link.expires_at > now
                )
            )
        ).first()
        return to_model(LinkCode, row)

    async def claim(self, code: str, user_id: int, now: datetime) -> bool:
        """The account that typed the code confirmed; False if the code is used, expired, or another
        account claimed it first (a second claimer cannot take a pending link over)."""
        link = t.link_codes.c
        result = await self.c.execute(
            t.link_codes.update()
            .where(
                link.code == code,
                link.used_at.is_(None),
                link.expires_at > now,
                sa.or_(link.claimed_by.is_(None), link.claimed_by == user_id),
            )
            .values(claimed_by=user_id, claimed_at=now)
        )
        return result.rowcount == 1

    async def use(self, code: str, owner_id: int, claimed_since: datetime, now: datetime) -> int | None:
        """The code's maker confirmed (or refused): the claiming account, if the claim is recent
        enough; the code cannot be used again either way."""
        link = t.link_codes.c
        result = await self.c.execute(
            t.link_codes.update()
            .where(
                link.code == code,
                link.user_id == owner_id,
                link.used_at.is_(None),
                link.claimed_by.is_not(None),
                link.claimed_at > claimed_since,
            )
            .values(used_at=now)
            .returning(link.claimed_by)
        )
        claimed_by: int | None = result.scalar()
        return claimed_by

    async def record(
        self,
        keep: int,
        former: User,
        identities: Sequence[tuple[str, str]],
        now: datetime,
    ) -> int:
        """Remember a link, so it can be undone: which identities came from which account."""
        result = await self.c.execute(
            t.account_links.insert()
            .values(
                user_id=keep,
                former_user_id=former.id,
                former_name=former.display_name,
                identities=[list(identity) for identity in identities],
                former_role=former.role,
                linked_at=now,
            )
            .returning(t.account_links.c.id)
        )
        link_id: int = result.scalar_one()
        return link_id

    async def get_link(self, link_id: int) -> AccountLink | None:
        row = (
            await self.c.execute(sa.select(t.account_links).where(t.account_links.c.id == link_id))
        ).first()
        return to_model(AccountLink, row)

    async def recent_links(self, limit: int) -> list[AccountLink]:
        """Links not undone, newest first."""
        a = t.account_links.c
        rows = await self.c.execute(
            sa.select(t.account_links).where(a.undone_at.is_(None)).order_by(a.id.desc()).limit(limit)
        )
        return all_models(AccountLink, rows)

    async def link_bringing(self, channel: str, external_id: str) -> AccountLink | None:
        """The link (not undone) that brought this identity to the person it belongs to now."""
        a, i = t.account_links.c, t.identities.c
        rows = await self.c.execute(
            sa.select(t.account_links)
            .join(t.identities, i.user_id == a.user_id)
            .where(a.undone_at.is_(None), i.channel == channel, i.external_id == external_id)
            .order_by(a.id.desc())
        )
        for link in all_models(AccountLink, rows):
            if [channel, external_id] in link.identities:
                return link
        return None

    async def split_off(self, link: AccountLink, into: int, now: datetime) -> list[tuple[str, str]]:
        """Give the identities the link brought (those still with its person) to user `into`; none
        if the link was undone meanwhile. Their unfinished dialogues on those channels are dropped."""
        a = t.account_links.c
        result = await self.c.execute(
            t.account_links.update()
            .where(a.id == link.id, a.undone_at.is_(None))
            .values(undone_at=now, undone_into=into)
        )
        if result.rowcount != 1:
            return []
        moved: list[tuple[str, str]] = []
        i = t.identities.c
        for channel, external_id in link.identities:
            result = await self.c.execute(
                t.identities.update()
                .where(i.channel == channel, i.external_id == external_id, i.user_id == link.user_id)
                .values(user_id=into)
            )
            if result.rowcount:
                moved.append((channel, external_id))
                conv = t.conversations.c
                await self.c.execute(
                    t.conversations.delete().where(conv.user_id == link.user_id, conv.channel == channel)
                )
        return moved

    async def merge_users(self, keep: int, drop: int, now: datetime | None = None) -> None:
        """Give everything of user `drop` to user `keep`, then remove `drop`."""
        # `now` dates the entries that move points; callers should pass their clock.
        now = now or datetime.now(UTC)
        await self._withdraw_double_requests(keep, drop, now)
        await self.ledger.merge_users(keep, drop, now)
        for table, column in _references_to_users():
            # Where one row per person is allowed (one sign-up per shift, one answer per
            # question...) and both people have one, the surviving person's row stays.
            for unique in _unique_column_sets(table):
                if column.name not in unique:
                    continue
                theirs = table.alias("theirs")
                same_place = [theirs.c[name] == table.c[name] for name in unique if name != column.name]
                clash = sa.exists().where(theirs.c[column.name] == keep, *same_place)
                await self.c.execute(table.delete().where(column == drop, clash))
            await self.c.execute(table.update().where(column == drop).values({column.name: keep}))
        kept_grids = sa.select(t.grid_assignments.c.grid_key).where(t.grid_assignments.c.user_id == keep)
        await self.c.execute(
            t.grid_assignments.update()
            .where(t.grid_assignments.c.user_id == drop, t.grid_assignments.c.grid_key.not_in(kept_grids))
            .values(user_id=keep)
        )
        await self.c.execute(t.users.delete().where(t.users.c.id == drop))

    async def _withdraw_double_requests(self, keep: int, drop: int, now: datetime) -> None:
        """Where both accounts wait for the same reward, the person may keep one request (one
        pending request per person and reward): the dropped account's is withdrawn and its held
        points go back, to move with the rest of its points."""
        r = t.redemptions.c
        kept = t.redemptions.alias("kept")
        doubles = await self.c.execute(
            sa.select(r.id).where(
                r.user_id == drop,
                r.state == PENDING,
                sa.exists().where(
                    kept.c.user_id == keep, kept.c.state == PENDING, kept.c.reward_key == r.reward_key
                ),
            )
        )
        for redemption_id in doubles.scalars().all():
            await self.c.execute(
                t.redemptions.update().where(r.id == redemption_id).values(state=REJECTED, decided_at=now)
            )
            await self.ledger.release(redemption_ref(redemption_id), None, now, REASON_REDEMPTION_MERGED)


# Handled by their own rules when two people are merged (points move as ledger entries).
_MERGED_SEPARATELY = frozenset(
    {"users", "grid_assignments", "point_accounts", "point_earnings", "ledger_entries"}
)


@cache
def _references_to_users() -> list[tuple[sa.Table, sa.Column[Any]]]:
    """Every column that points at a person, so merging two people cannot miss a table added later."""
    return [
        (table, column)
        for table in t.metadata.sorted_tables
        if table.name not in _MERGED_SEPARATELY
        for column in table.columns
        if any(fk.column is t.users.c.id for fk in column.foreign_keys)
    ]


def _unique_column_sets(table: sa.Table) -> list[tuple[str, ...]]:
    """Column sets that are unique everywhere in the table (partial unique indexes aside)."""
    sets = [tuple(c.name for c in table.primary_key.columns)]
    sets += [
        tuple(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, sa.UniqueConstraint)
    ]
    sets += [
        tuple(c.name for c in index.columns)
        for index in table.indexes
        if index.unique and index.dialect_options["sqlite"].get("where") is None
    ]
    return sets
