"""The report's card in the police groups: posted when filed, then edited as the report moves.

The card is rendered from the report when delivered, so a card that waits in the
outbox still shows the current state; the sent card's message is remembered per
chat, so the next change edits it instead of posting a new one.
"""

from __future__ import annotations

from datetime import datetime

from handlers import notify
from handlers.community import Community
from handlers.registry import Lane, OutboxKind, Rendered
from handlers.reports.views import card
from storage.models import OutboxMessage
from storage.repositories import Repos

CARD = "card"
CARD_EDIT = "card_edit"


async def post(repos: Repos, community: Community, report_id: int, now: datetime, *, edit: bool) -> None:
    """Post (or refresh) the report's card in every police group."""
    await notify.to_police_groups(
        repos, community, CARD_EDIT if edit else CARD, {"report_id": report_id}, now
    )


async def render(repos: Repos, community: Community, row: OutboxMessage) -> Rendered:
    report = await repos.reports.get(int(row.payload["report_id"]))
    if report is None:
        raise LookupError("report no longer exists")
    reply = await card(repos, community, report, show_reporter=False)
    if row.kind != CARD_EDIT:
        return Rendered(reply)
    existing = await repos.reports.card(report.id, row.channel, row.chat_id)
    return Rendered(reply, edit_ref=existing.message_id if existing else None)


async def settled(
    repos: Repos,
    community: Community,
    row: OutboxMessage,
    state: str,
    ref: str | None,
    now: datetime,
) -> None:
    """Remember the card's message in this chat, for the next edit."""
    if state == "sent" and ref is not None:
        await repos.reports.add_card(int(row.payload["report_id"]), row.channel, row.chat_id, ref)


# A card is how police learn of a report: it waits out any outage, however long.
KINDS = {
    CARD: OutboxKind(render, settled, gives_up_after=None, lane=Lane.INTERACTIVE),
    CARD_EDIT: OutboxKind(render, settled, gives_up_after=None, lane=Lane.INTERACTIVE),
}
