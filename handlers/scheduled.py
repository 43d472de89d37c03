"""What happens when time passes: reminders, escalations, and idle drafts discarded."""

from __future__ import annotations

from datetime import datetime, timedelta

from handlers import conversation, features, notify
from handlers.clock import Clock
from handlers.community import Community
from handlers.messages import Reply, Text
from handlers.services import reports
from storage.models import Conversation, Schedule
from storage.repositories import Repos


async def fire(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    now = clock.now()
    if schedule.kind == reports.REMINDER:
        await reports.fire_reminder(repos, community, int(schedule.ref), now)
    elif schedule.kind == reports.ESCALATION:
        await reports.fire_escalation(repos, community, int(schedule.ref), now)
    elif schedule.kind in features.SCHEDULES:
        await features.SCHEDULES[schedule.kind](repos, community, clock, schedule)


async def idle_drafts(repos: Repos, community: Community, now: datetime) -> list[Conversation]:
    return await repos.conversations.idle_since(now - timedelta(minutes=community.limits.draft_idle_minutes))


async def expire_draft(repos: Repos, community: Community, draft: Conversation, now: datetime) -> bool:
    """Discard an idle draft and say so, once: a draft touched meanwhile is left alone."""
    if not await repos.conversations.delete_if_unchanged(draft.user_id, draft.channel, draft.updated_at):
        return False
    user = await repos.users.get(draft.user_id)
    flow = conversation.flow_named(draft.flow)
    if user is not None:
        key = flow.expired_key if flow else "conversation.expired"
        reply = Reply(Text(key, {"minutes": community.limits.draft_idle_minutes}))
        await notify.to_user(repos, community, user, reply, now)
    return True
