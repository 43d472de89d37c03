"""All repositories bound to one transaction: the one object handlers are handed.

Each aggregate keeps its statements in a module of its own (storage/people.py,
reports.py, ledger.py, patrols.py, ...). A new feature adds its module with one
repository class (a `storage.rows.Repo`) and its tables to storage/schema.py (and a
migration), and reaches the repository with `repos.of(ItsRepo)`: nothing here changes.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import TypeVar

from storage.attendance import AttendanceRepo
from storage.audit import AuditRepo
from storage.broadcasts import BroadcastRepo
from storage.conversations import ConversationRepo
from storage.db import DbConnection
from storage.inbox import InboxRepo, MenuRepo
from storage.kinds import Kinds
from storage.ledger import LedgerRepo
from storage.media import MediaRepo
from storage.notices import NoticeRepo
from storage.outbox import OutboxRepo
from storage.patrols import PatrolRepo
from storage.people import InviteRepo, LinkRepo, UserRepo
from storage.reports import ReportRepo
from storage.rewards import RewardRepo
from storage.rows import Repo
from storage.schedules import ScheduleRepo

R = TypeVar("R", bound=Repo)


class Repos:
    """All repositories bound to one transaction.

    `tz` is the community's time zone, which decides the months of the points leaderboard;
    `kinds` the outbox and schedule kinds the features declare (None accepts any).
    """

    def __init__(self, connection: DbConnection, tz: tzinfo = UTC, kinds: Kinds | None = None) -> None:
        self.connection = connection
        self.users = UserRepo(connection)
        self.invites = InviteRepo(connection)
        self.conversations = ConversationRepo(connection)
        self.reports = ReportRepo(connection)
        self.media = MediaRepo(connection)
        self.outbox = OutboxRepo(connection, kinds)
        self.schedules = ScheduleRepo(connection, kinds)
        self.inbox = InboxRepo(connection)
        self.menus = MenuRepo(connection)
        self.ledger = LedgerRepo(connection, tz)
        self.links = LinkRepo(connection, self.ledger)
        self.patrols = PatrolRepo(connection)
        self.attendance = AttendanceRepo(connection)
        self.rewards = RewardRepo(connection)
        self.broadcasts = BroadcastRepo(connection)
        self.notices = NoticeRepo(connection)
        self.audit = AuditRepo(connection)
        self._others: dict[type[Repo], Repo] = {}
        # Stored files (media paths) nothing refers to once this transaction commits: the engine
        # deletes them after the commit, so a rollback never leaves a row without its file.
        self.forgotten_media: list[str] = []

    def of(self, repository: type[R]) -> R:
        """A feature's own repository, bound to this transaction (one instance per transaction)."""
        found = self._others.get(repository)
        if found is None:
            found = self._others[repository] = repository(self.connection)
        assert isinstance(found, repository)
        return found
