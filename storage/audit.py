"""The audit log: an append-only record of privileged actions (who, what, when, on whom)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage import schema as t
from storage.rows import Repo, all_models

# Where an action came from when no person in a chat took it.
VIA_CLI = "cli"
VIA_SYSTEM = "system"

# The actions recorded (`shouwang audit --action` takes these names).
ROLE_GRANT = "role.grant"
ROLE_REVOKE = "role.revoke"
INVITE_CREATE = "invite.create"
INVITE_REDEEM = "invite.redeem"
INVITE_WITHDRAW = "invite.withdraw"
LINK_CREATE = "link.create"
LINK_UNDO = "link.undo"
POINTS_AWARD = "points.award"
POINTS_REVOKE = "points.revoke"
REDEMPTION_APPROVE = "redemption.approve"
REDEMPTION_REJECT = "redemption.reject"
DATA_EXPORT = "data.export"
BROADCAST_SEND = "broadcast.send"
REPORT_REVEAL_REPORTER = "report.reveal_reporter"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_id: int | None
    via: str
    action: str
    subject_id: int | None
    target: str | None
    detail: dict[str, Any]


class AuditRepo(Repo):
    async def record(
        self,
        at: datetime,
        action: str,
        *,
        via: str,
        actor_id: int | None = None,
        subject_id: int | None = None,
        target: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one entry. `detail` holds ids, roles and counts, never names or message texts."""
        await self.c.execute(
            sa.insert(t.audit_log).values(
                at=at,
                action=action,
                via=via,
                actor_id=actor_id,
                subject_id=subject_id,
                target=target,
                detail=dict(detail or {}),
            )
        )

    async def entries(
        self,
        *,
        since: datetime | None = None,
        action: str | None = None,
        subject_id: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """The newest entries first (older than entry `before_id`, to page back), at most `limit`."""
        query = sa.select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(t.audit_log.c.id < before_id)
        if since is not None:
            query = query.where(t.audit_log.c.at >= since)
        if action is not None:
            query = query.where(t.audit_log.c.action == action)
        if subject_id is not None:
            query = query.where(t.audit_log.c.subject_id == subject_id)
        return all_models(AuditEntry, await self.c.execute(query))
