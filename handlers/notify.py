"""Everything said to someone other than the person who just spoke goes through the outbox.

Rows are written in the same transaction as the change they announce, so a
report is never stored without its notifications, nor announced without being stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handlers.community import Community, PoliceGroups
from handlers.messages import Reply, reply_to_json
from handlers.registry import MESSAGE
from storage.models import User
from storage.repositories import Repos
from storage.roles import COMMANDERS

# Who is told privately when no police group is configured: police officers and admins.
OFFICERS = COMMANDERS


async def to_user(repos: Repos, community: Community, user: User, reply: Reply, now: datetime) -> bool:
    """Queue a private message on the channel the person used last; False if unreachable."""
    for identity in await repos.users.identities(user.id):
        if identity.chat_id:
            language = user.language or community.default_language
            await repos.outbox.enqueue(
                identity.channel, identity.chat_id, language, MESSAGE, reply_to_json(reply), now
            )
            return True
    return False


def police_chats(community: Community) -> list[tuple[str, str]]:
    return group_chats(community.police_groups)


def resident_chats(community: Community) -> list[tuple[str, str]]:
    return group_chats(community.resident_groups)


def group_chats(groups: PoliceGroups) -> list[tuple[str, str]]:
    """(channel, chat id) of every configured group chat."""
    return [
        (channel, str(chat)) for channel in type(groups).model_fields for chat in getattr(groups, channel)
    ]


async def to_resident_groups(repos: Repos, community: Community, reply: Reply, now: datetime) -> None:
    for channel, chat_id in resident_chats(community):
        await repos.outbox.enqueue(
            channel, chat_id, community.default_language, MESSAGE, reply_to_json(reply), now
        )


async def to_police(repos: Repos, community: Community, reply: Reply, now: datetime) -> None:
    """Tell the police in their group chats; in a community with none configured, tell every police
    officer and admin privately, so requests that wait for them are not said to nobody."""
    chats = police_chats(community)
    for channel, chat_id in chats:
        await repos.outbox.enqueue(
            channel, chat_id, community.default_language, MESSAGE, reply_to_json(reply), now
        )
    if not chats:
        for officer in await repos.users.with_roles(OFFICERS):
            await to_user(repos, community, officer, reply, now)


async def to_police_groups(
    repos: Repos, community: Community, kind: str, payload: dict[str, Any], now: datetime
) -> None:
    """Queue a row of a feature's own outbox kind (rendered when it is sent) for every police group."""
    for channel, chat_id in police_chats(community):
        await repos.outbox.enqueue(channel, chat_id, community.default_language, kind, payload, now)
