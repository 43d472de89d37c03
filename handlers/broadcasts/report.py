"""The author's delivery report: posted when sending starts, then edited in place as copies settle."""

from __future__ import annotations

from handlers.broadcasts import rules, views
from handlers.community import Community
from handlers.registry import Rendered
from storage.models import OutboxMessage
from storage.repositories import Repos


async def render_summary(repos: Repos, community: Community, row: OutboxMessage) -> Rendered:
    summary = await rules.summary_to_send(repos, row)
    return Rendered(views.summary(community, summary.report), edit_ref=summary.edit_ref)
