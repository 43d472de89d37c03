"""What patrols tell people who did not ask: changes to their shifts, bans, volunteer requests.

Each function takes what a rule decided and turns it into outbox messages,
for the dialogues, the scheduled jobs and the attendance feature alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from handlers import notify
from handlers.community import Community
from handlers.messages import Reply
from handlers.patrols import rules, views
from storage.models import PatrolShift, User
from storage.repositories import Repos


async def tell(
    repos: Repos, community: Community, people: Sequence[User], reply: Reply, now: datetime
) -> int:
    """Tell each of these people; returns how many could be told."""
    told = 0
    for user in people:
        if await notify.to_user(repos, community, user, reply, now):
            told += 1
    return told


async def promoted(
    repos: Repos, community: Community, shift: PatrolShift, people: Sequence[User], now: datetime
) -> None:
    await tell(repos, community, people, views.promoted(community, shift), now)


async def ban_if_reached(
    repos: Repos, community: Community, user_id: int, now: datetime, newly: int = 1
) -> bool:
    """Call after marking `newly` no-shows of this person: if that reached the ban, tell them and the police.

    True if the ban was announced. Told once: only the marking that crosses the line announces.
    """
    reached = await rules.ban_reached(repos, community, user_id, newly)
    if reached is None:
        return False
    user, count = reached
    await notify.to_user(repos, community, user, views.banned(count), now)
    await notify.to_police(repos, community, views.banned_card(user, count), now)
    return True


async def volunteer(repos: Repos, community: Community, user: User, now: datetime) -> str:
    """A resident becomes a volunteer, or asks police to approve it (who are sent the request)."""
    outcome = await rules.volunteer(repos, community, user, now)
    if outcome == rules.REQUESTED:
        await notify.to_police(repos, community, views.volunteer_request(community, user), now)
    return outcome
