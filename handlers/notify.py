"""Everything said to someone other than the person who just spoke goes through the outbox.

Rows are written in the same transaction as the change they announce, so a
report is never stored without its notifications, nor announced without being stored.
"""

from __future__ import annotations

from datetime import datetime

from handlers.community import Community, PoliceGroups
from handlers.messages import Reply, reply_to_json
from handlers.services.accounts import COMMANDERS
from storage.models import User
from storage.repositories import Repos

CARD = "card"
CARD_EDIT = "card_edit"
MESSAGE = "message"


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
        for officer in await repos.users.with_roles(COMMANDERS):
            await to_user(repos, community, officer, reply, now)


async def report_card(
    repos: Repos, community: Community, report_id: int, now: datetime, *, edit: bool
) -> None:
    """Post (or refresh) the report's card in every police group.

    The card is rendered from the report when delivered, so a card that waits
    in the outbox still shows the current state.
    """
    for channel, chat_id in police_chats(community):
        await repos.outbox.enqueue(
            channel,
            chat_id,
            community.default_language,
            CARD_EDIT if edit else CARD,
            {"report_id": report_id},
            now,
        )
