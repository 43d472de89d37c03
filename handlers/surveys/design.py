"""/survey (police, admins): title → questions (text, then scale or choices) → audience → sample → confirm."""

from __future__ import annotations

from handlers import choices, conversation
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError
from handlers.surveys import rules, views


def _pressed(ctx: Ctx, verb: str) -> str | None:
    """The argument of a dialogue button of kind `verb`, if that is what was pressed."""
    parts = choices.decode(ctx.inp.action)
    if parts and len(parts) == 3 and parts[0] == views.FLOW_ACTION and parts[1] == verb:
        return parts[2]
    return None


def _use_buttons(ctx: Ctx) -> None:
    ctx.say("error.stale_button" if ctx.inp.action else "survey.use_buttons")


def _number(ctx: Ctx) -> int:
    """The number of the question being written."""
    return len(ctx.data.get("questions", [])) + 1


async def start(ctx: Ctx) -> None:
    rules.require_commander(ctx.user)
    await conversation.begin(ctx, FLOW, "title", {"questions": []})


async def ask_title(ctx: Ctx) -> None:
    ctx.say("survey.ask_title", max=rules.TITLE_MAX_CHARS)


async def handle_title(ctx: Ctx) -> str | None:
    if ctx.inp.action:
        _use_buttons(ctx)
        return "title"
    title = ctx.short_answer(rules.TITLE_MAX_CHARS, "survey.need_text")
    if title is None:
        return "title"
    ctx.data["title"] = title
    return "question"


async def ask_question(ctx: Ctx) -> None:
    ctx.say("survey.ask_question", number=_number(ctx), max=rules.QUESTION_MAX_CHARS)


async def handle_question(ctx: Ctx) -> str | None:
    if ctx.inp.action:
        _use_buttons(ctx)
        return "question"
    text = ctx.short_answer(rules.QUESTION_MAX_CHARS, "survey.need_text")
    if text is None:
        return "question"
    ctx.data["pending"] = text
    return "type"


async def ask_type(ctx: Ctx) -> None:
    ctx.say("survey.ask_type", choices=views.type_buttons(), number=_number(ctx))


async def handle_type(ctx: Ctx) -> str | None:
    kind = _pressed(ctx, "type")
    if kind == rules.SCALE:
        ctx.data["questions"].append({"text": ctx.data.pop("pending"), "type": rules.SCALE})
        return _after_question(ctx)
    if kind == rules.CHOICE:
        return "choices"
    _use_buttons(ctx)
    return None


def _after_question(ctx: Ctx) -> str:
    return "audience" if len(ctx.data["questions"]) >= rules.MAX_QUESTIONS else "more"


async def ask_choices(ctx: Ctx) -> None:
    ctx.say("survey.ask_choices", min=rules.MIN_CHOICES, max=rules.MAX_CHOICES)


async def handle_choices(ctx: Ctx) -> str | None:
    if ctx.inp.action:
        _use_buttons(ctx)
        return "choices"
    try:
        labels = rules.parse_choices(ctx.inp.text or "")
    except DomainError as refused:
        ctx.say(refused.key, **refused.params)
        return "choices"
    ctx.data["questions"].append({"text": ctx.data.pop("pending"), "type": rules.CHOICE, "choices": labels})
    return _after_question(ctx)


async def ask_more(ctx: Ctx) -> None:
    ctx.say(
        "survey.ask_more",
        choices=views.more_buttons(),
        count=len(ctx.data["questions"]),
        max=rules.MAX_QUESTIONS,
    )


async def handle_more(ctx: Ctx) -> str | None:
    answer = _pressed(ctx, "more")
    if answer == "add":
        return "question"
    if answer == "done":
        return "audience"
    _use_buttons(ctx)
    return None


async def ask_audience(ctx: Ctx) -> None:
    ctx.say("survey.ask_audience", choices=views.audience_buttons(ctx.community))


async def handle_audience(ctx: Ctx) -> str | None:
    picked = _pressed(ctx, "aud")
    if picked == "all":
        ctx.data["audience"] = rules.audience_of(None)
    elif picked is not None and ctx.community.grid(picked) is not None:
        ctx.data["audience"] = rules.audience_of(picked)
    else:
        _use_buttons(ctx)
        return None
    return "sample"


async def ask_sample(ctx: Ctx) -> None:
    eligible = len(await rules.eligible(ctx.repos, ctx.data["audience"]))
    ctx.data["eligible"] = eligible
    ctx.say("survey.ask_sample", choices=views.sample_buttons(), count=eligible)


async def handle_sample(ctx: Ctx) -> str | None:
    if _pressed(ctx, "sample") == "all":
        ctx.data["sample"] = None
        return "confirm"
    if ctx.inp.action:
        _use_buttons(ctx)
        return "sample"
    try:
        ctx.data["sample"] = rules.parse_sample(ctx.inp.text or "", int(ctx.data.get("eligible", 0)))
    except DomainError as refused:
        ctx.say(refused.key, **refused.params)
        return "sample"
    return "confirm"


async def ask_confirm(ctx: Ctx) -> None:
    eligible = len(await rules.eligible(ctx.repos, ctx.data["audience"]))
    points = ctx.community.broadcasts.survey_points
    ctx.response.replies.append(views.confirm(ctx.community, ctx.data, eligible, points))


async def handle_confirm(ctx: Ctx) -> str | None:
    if _pressed(ctx, "ok"):
        data = ctx.data
        try:
            started = await rules.start(
                ctx.repos,
                ctx.community,
                ctx.user,
                title=data["title"],
                questions=data["questions"],
                audience=data["audience"],
                sample_size=data.get("sample"),
                now=ctx.clock.now(),
                invitation=views.invitation,
            )
        except DomainError as refused:
            ctx.say(refused.key, **refused.params)
            return END
        ctx.say("survey.started", title=views.title(started.survey), invited=started.invited)
        return END
    if _pressed(ctx, "no"):
        ctx.say("survey.cancelled")
        return END
    _use_buttons(ctx)
    return None


FLOW = Flow(
    "survey",
    {
        "title": Step(ask_title, handle_title),
        "question": Step(ask_question, handle_question),
        "type": Step(ask_type, handle_type),
        "choices": Step(ask_choices, handle_choices),
        "more": Step(ask_more, handle_more),
        "audience": Step(ask_audience, handle_audience),
        "sample": Step(ask_sample, handle_sample),
        "confirm": Step(ask_confirm, handle_confirm),
    },
    expired_key="survey.expired",
)
