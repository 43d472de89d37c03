"""What each recipient receives when their outbox row is sent: the alert, or the reminder to acknowledge it.

Rendered from the broadcast at sending time, so a cancelled broadcast sends nothing more.
"""

from __future__ import annotations

from handlers.broadcasts import rules, views
from handlers.community import Community
from handlers.registry import Rendered
from storage.models import OutboxMessage
from storage.repositories import Repos


async def render_copy(repos: Repos, community: Community, row: OutboxMessage) -> Rendered:
    if row.payload.get("reminder"):
        return Rendered(views.reminder(community, await rules.reminder_to_send(repos, row)))
    broadcast = await rules.copy_to_send(repos, row)
    return Rendered(views.copy(community, broadcast, group=bool(row.payload.get("group"))))
