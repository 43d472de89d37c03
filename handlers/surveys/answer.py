"""A resident answers a survey one question at a time with buttons; finishing earns points once."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.surveys import rules, views


async def answer(ctx: Ctx, survey_id: int, index: int, value: str) -> None:
    answered = await rules.answer(ctx.repos, ctx.user, survey_id, index, value, ctx.clock.now())
    ctx.notice("survey.answer_noted")
    survey = answered.survey
    if answered.next_question is not None:
        ctx.response.replies.append(views.question(survey, answered.next_question))
    elif answered.points:
        ctx.say("survey.thanks", title=views.title(survey), points=answered.points)
    else:
        ctx.say("survey.thanks_no_points", title=views.title(survey))
