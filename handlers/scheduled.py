"""What happens when a schedule row falls due: reminders, escalations, expired drafts."""

from __future__ import annotations

from datetime import timedelta

from handlers import conversation, notify
from handlers.clock import Clock
from handlers.community import Community
from handlers.messages import Reply, Text
from handlers.services import reports
from storage.models import Schedule
from storage.repositories import Repos


async def fire(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    now = clock.now()
    if schedule.kind == reports.REMINDER:
        await reports.fire_reminder(repos, community, int(schedule.ref), now)
    elif schedule.kind == reports.ESCALATION:
        await reports.fire_escalation(repos, community, int(schedule.ref), now)
    elif schedule.kind == conversation.DRAFT_EXPIRY:
        await _expire_draft(repos, community, schedule, now)


async def _expire_draft(repos: Repos, community: Community, schedule: Schedule, now: object) -> None:
    user_id_text, _, channel = schedule.ref.partition(":")
    user_id = int(user_id_text)
    draft = await repos.conversations.get(user_id, channel)
    idle = timedelta(minutes=community.limits.draft_idle_minutes)
    if draft is None or draft.updated_at + idle > now:  # type: ignore[operator]
        return
    await repos.conversations.delete(user_id, channel)
    user = await repos.users.get(user_id)
    flow = conversation.flow_named(draft.flow)
    if user is not None:
        key = flow.expired_key if flow else "conversation.expired"
        await notify.to_user(
            repos,
            community,
            user,
            Reply(Text(key, {"minutes": community.limits.draft_idle_minutes})),
            now,  # type: ignore[arg-type]
        )
