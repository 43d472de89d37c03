"""What happens when time passes besides the features' schedules: idle drafts discarded."""

from __future__ import annotations

from datetime import datetime, timedelta

from handlers import notify
from handlers.community import Community
from handlers.messages import Reply, Text
from handlers.registry import Registry
from storage.models import Conversation
from storage.repositories import Repos


async def idle_drafts(repos: Repos, community: Community, now: datetime) -> list[Conversation]:
    return await repos.conversations.idle_since(now - timedelta(minutes=community.limits.draft_idle_minutes))


async def expire_draft(
    repos: Repos, community: Community, draft: Conversation, now: datetime, registry: Registry
) -> bool:
    """Discard an idle draft and say so, once: a draft touched meanwhile is left alone."""
    if not await repos.conversations.delete_if_unchanged(draft.user_id, draft.channel, draft.updated_at):
        return False
    user = await repos.users.get(draft.user_id)
    flow = registry.flows.get(draft.flow)
    if user is not None:
        key = flow.expired_key if flow else "conversation.expired"
        reply = Reply(Text(key, {"minutes": community.limits.draft_idle_minutes}))
        await notify.to_user(repos, community, user, reply, now)
    return True
