"""Everything said to someone other than the person who just spoke goes through the outbox.

Rows are written in the same transaction as the change they announce, so a
report is never stored without its notifications, nor announced without being stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handlers.community import Community, PoliceGroups
from handlers.messages import Reply, reply_to_json
from handlers.registry import MESSAGE, Lane
from storage.models import Identity, User
from storage.repositories import Repos
from storage.roles import COMMANDERS

# Who is told privately when no police group reaches them: police officers and admins.
OFFICERS = COMMANDERS


async def to_user(
    repos: Repos, community: Community, user: User, reply: Reply, now: datetime, lane: Lane = Lane.INTERACTIVE
) -> bool:
    """Queue a private message on the channel the person used last; False if unreachable.

    `lane`: what it may wait behind (see Lane); most notices are someone waiting for news."""
    identity = await _private_chat(repos, user)
    if identity is None or identity.chat_id is None:
        return False
    language = user.language or community.default_language
    await repos.outbox.enqueue(
        identity.channel, identity.chat_id, language, MESSAGE, reply_to_json(reply), now, priority=lane
    )
    return True


def police_chats(community: Community) -> list[tuple[str, str]]:
    return group_chats(community.police_groups)


def resident_chats(community: Community) -> list[tuple[str, str]]:
    return group_chats(community.resident_groups)


def group_chats(groups: PoliceGroups) -> list[tuple[str, str]]:
    """(channel, chat id) of every configured group chat."""
    return [
        (channel, str(chat)) for channel in type(groups).model_fields for chat in getattr(groups, channel)
    ]


async def to_resident_groups(
    repos: Repos, community: Community, reply: Reply, now: datetime, lane: Lane = Lane.INTERACTIVE
) -> None:
    for channel, chat_id in resident_chats(community):
        await repos.outbox.enqueue(
            channel, chat_id, community.default_language, MESSAGE, reply_to_json(reply), now, priority=lane
        )


async def to_police(
    repos: Repos, community: Community, reply: Reply, now: datetime, lane: Lane = Lane.INTERACTIVE
) -> None:
    """Tell the police in their group chats, and privately every police officer and admin whom
    no group reaches (none configured on the channels they use), so nothing waits for nobody."""
    for channel, chat_id in police_chats(community):
        await repos.outbox.enqueue(
            channel, chat_id, community.default_language, MESSAGE, reply_to_json(reply), now, priority=lane
        )
    for officer in await officers_outside_groups(repos, community):
        await to_user(repos, community, officer, reply, now, lane)


async def to_police_groups(
    repos: Repos, community: Community, kind: str, payload: dict[str, Any], now: datetime
) -> None:
    """Queue a row of a feature's own outbox kind (rendered when it is sent) for every police
    group, and for the private chat of every officer no group reaches (see to_police)."""
    for channel, chat_id in police_chats(community):
        await repos.outbox.enqueue(channel, chat_id, community.default_language, kind, payload, now)
    for officer in await officers_outside_groups(repos, community):
        identity = await _private_chat(repos, officer)
        if identity is not None and identity.chat_id is not None:
            language = officer.language or community.default_language
            await repos.outbox.enqueue(identity.channel, identity.chat_id, language, kind, payload, now)


async def officers_outside_groups(repos: Repos, community: Community) -> list[User]:
    """Police officers and admins on none of the channels that have a police group configured.

    Someone on a channel with a police group is taken to be in it; on a channel without one
    (WeChat Work with no robot or app chat set up, say), only their private chat reaches them.
    """
    covered = {channel for channel, _ in police_chats(community)}
    outside = []
    for officer in await repos.users.with_roles(OFFICERS):
        identities = await repos.users.identities(officer.id)
        if not any(identity.channel in covered for identity in identities):
            outside.append(officer)
    return outside


async def _private_chat(repos: Repos, user: User) -> Identity | None:
    """The private chat of the channel the person used last (what to_user writes to)."""
    for identity in await repos.users.identities(user.id):
        if identity.chat_id:
            return identity
    return None
