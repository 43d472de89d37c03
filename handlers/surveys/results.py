"""/surveys (police, admins): the recent surveys' results per grid with the response rate, and Close."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.surveys import rules, views


async def list_surveys(ctx: Ctx) -> None:
    found = await rules.recent(ctx.repos, ctx.user)
    if not found:
        ctx.say("survey.none")
        return
    for survey in found:
        ctx.response.replies.append(
            views.results(ctx.community, await rules.results(ctx.repos, ctx.community, survey))
        )


async def close(ctx: Ctx, survey_id: int) -> None:
    survey = await rules.close(ctx.repos, ctx.user, survey_id, ctx.clock.now())
    ctx.notice("survey.closed_now", title=views.title(survey))
    ctx.say("survey.closed_now", title=views.title(survey))
    ctx.response.replies.append(
        views.results(ctx.community, await rules.results(ctx.repos, ctx.community, survey))
    )
