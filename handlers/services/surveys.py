"""Satisfaction surveys (安全感/满意度调查): the rules, without any platform.

Police start a survey of 1-5 questions (a 1-5 scale, or 2-6 choices) for all
residents or one grid, optionally a random sample of them. Each participant
is invited through the outbox, in the private chat they used last and have not
blocked, with the first question and answers one question
at a time with buttons; the database decides which question a person is at,
so a stale or repeated button changes nothing. Finishing earns points once
(the ledger's source key `survey:<id>:<user>`).

The sample is a simple random sample without replacement (every eligible
resident equally likely), drawn with the operating system's random source.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers import choices, notify
from handlers.community import Community
from handlers.errors import DomainError, PermissionDenied, StaleAction
from handlers.messages import Choice, Lines, Reply, Text, Verbatim, reply_to_json
from handlers.services.accounts import COMMANDERS
from storage.models import Survey, User
from storage.notices import CLOSED, OPEN, AnswerCount, Invitee, Turnout
from storage.repositories import Repos

ACTION = "svy"
REASON_SURVEY = "points.reason.survey"

SCALE = "scale"
CHOICE = "choice"
SCALE_VALUES = tuple(range(1, 6))
MAX_QUESTIONS = 5
MIN_CHOICES = 2
MAX_CHOICES = 6
TITLE_MAX_CHARS = 60
QUESTION_MAX_CHARS = 200
# A choice is a button label: short enough for a phone screen.
CHOICE_MAX_CHARS = 24
# What separates typed choices: "A / B / C", as Chinese input methods type it too.
_CHOICE_SEPARATORS = ("／", "|", "｜")
RECENT_SURVEYS = 5

EVERYONE = "community"
GRIDS = "grids"


def require_commander(user: User) -> None:
    if user.role not in COMMANDERS:
        raise PermissionDenied()


# --- what police type ----------------------------------------------------------------------


def parse_choices(text: str) -> list[str]:
    """Choices typed as "A / B / C": 2-6 distinct labels, each short enough for a button."""
    value = text
    for separator in _CHOICE_SEPARATORS:
        value = value.replace(separator, "/")
    parts = [" ".join(part.split()) for part in value.split("/")]
    labels = [part for part in parts if part]
    distinct = {unicodedata.normalize("NFKC", label).casefold() for label in labels}
    if (
        not MIN_CHOICES <= len(labels) <= MAX_CHOICES
        or len(distinct) != len(labels)
        or any(len(label) > CHOICE_MAX_CHARS for label in labels)
    ):
        raise DomainError("survey.bad_choices", min=MIN_CHOICES, max=MAX_CHOICES, length=CHOICE_MAX_CHARS)
    return labels


def parse_sample(text: str, eligible: int) -> int:
    """A sample size typed as a whole number between 1 and the number of eligible residents."""
    value = unicodedata.normalize("NFKC", text).strip().removesuffix("人").strip()
    if not value.isdigit() or not 1 <= int(value) <= eligible:
        raise DomainError("survey.bad_sample", max=eligible)
    return int(value)


def audience_of(grid_key: str | None) -> dict[str, Any]:
    # The shape broadcasts use, so one reader understands both.
    return {"type": EVERYONE, "grids": []} if grid_key is None else {"type": GRIDS, "grids": [grid_key]}


def _audience_grid(audience: dict[str, Any]) -> str | None:
    grids = audience.get("grids") or []
    return str(grids[0]) if audience.get("type") == GRIDS and grids else None


async def eligible(repos: Repos, audience: dict[str, Any]) -> list[Invitee]:
    return await repos.notices.reachable_residents(_audience_grid(audience))


def draw_sample(invitees: Sequence[Invitee], size: int | None) -> list[Invitee]:
    if size is None or size >= len(invitees):
        return list(invitees)
    return secrets.SystemRandom().sample(list(invitees), size)


# --- labels ----------------------------------------------------------------------------------


def grid_label(community: Community, grid_key: str | None) -> Text | Verbatim:
    grid = community.grid(grid_key) if grid_key else None
    if grid is not None:
        return Verbatim(grid.name)
    return Verbatim(grid_key) if grid_key else Text("survey.no_grid")


def audience_label(community: Community, audience: dict[str, Any], sample_size: int | None) -> Text:
    grid_key = _audience_grid(audience)
    whom = (
        Text("survey.audience_everyone")
        if grid_key is None
        else Text("survey.audience_grid", {"grid": grid_label(community, grid_key)})
    )
    if sample_size is None:
        return whom
    return Text("survey.audience_sample", {"audience": whom, "count": sample_size})


def question_label(question: dict[str, Any], number: int) -> Text:
    """A question as police see it in a preview: number, text and how it is answered."""
    kind: Text
    if question["type"] == SCALE:
        kind = Text("survey.type_scale")
    else:
        kind = Text("survey.type_choice", {"choices": Verbatim(" / ".join(question["choices"]))})
    return Text(
        "survey.preview_question", {"number": number, "question": Verbatim(question["text"]), "type": kind}
    )


# --- asking residents ---------------------------------------------------------------------------


def question_text(survey: Survey, index: int) -> Text:
    question = survey.questions[index]
    return Text(
        "survey.question_scale" if question["type"] == SCALE else "survey.question_choice",
        {"number": index + 1, "total": len(survey.questions), "question": Verbatim(question["text"])},
    )


def answer_buttons(survey: Survey, index: int) -> tuple[tuple[Choice, ...], ...]:
    question = survey.questions[index]

    def button(label: Text, value: int) -> Choice:
        return Choice(label, action=choices.encode(ACTION, "a", survey.id, index, value))

    if question["type"] == SCALE:
        return (tuple(button(Text("survey.scale_button", {"value": v}), v) for v in SCALE_VALUES),)
    buttons = [
        button(Text("survey.choice_button", {"choice": Verbatim(label)}), position)
        for position, label in enumerate(question["choices"])
    ]
    # Two a row: choices are words, and a phone shows two side by side comfortably.
    return tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))


def invitation(survey: Survey) -> Reply:
    intro = Text(
        "survey.invite" if survey.points else "survey.invite_no_points",
        {"title": Verbatim(survey.title), "total": len(survey.questions), "points": survey.points},
    )
    return Reply(Lines((intro, question_text(survey, 0))), answer_buttons(survey, 0))


@dataclass(frozen=True)
class Started:
    survey: Survey
    invited: int


async def start(
    repos: Repos,
    community: Community,
    author: User,
    *,
    title: str,
    questions: list[dict[str, Any]],
    audience: dict[str, Any],
    sample_size: int | None,
    now: datetime,
) -> Started:
    """Store the survey, draw its participants and invite each of them with the first question."""
    require_commander(author)
    if not 1 <= len(questions) <= MAX_QUESTIONS:
        raise DomainError("survey.need_question")
    candidates = await eligible(repos, audience)
    if not candidates:
        raise DomainError("survey.nobody")
    invitees = draw_sample(candidates, sample_size)
    survey = await repos.notices.add_survey(
        author.id,
        title,
        questions,
        audience,
        sample_size,
        community.broadcasts.survey_points,
        now,
    )
    await repos.notices.add_participants(survey.id, invitees, now)
    # Straight to the chat found above (notify.to_user would look each person up again).
    payload = reply_to_json(invitation(survey))
    for invitee in invitees:
        language = invitee.language or community.default_language
        await repos.outbox.enqueue(invitee.channel, invitee.chat_id, language, notify.MESSAGE, payload, now)
    return Started(survey, len(invitees))


# --- answering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    """What an answer led to: the next question, or the end (with the points earned, if any)."""

    survey: Survey
    next_question: int | None
    points: int = 0


def _check_value(survey: Survey, index: int, value: str) -> str:
    if not 0 <= index < len(survey.questions) or not value.isdigit():
        raise StaleAction()
    question = survey.questions[index]
    number = int(value)
    if question["type"] == SCALE and number in SCALE_VALUES:
        return str(number)
    if question["type"] == CHOICE and 0 <= number < len(question["choices"]):
        return str(number)
    raise StaleAction()


async def answer(repos: Repos, user: User, survey_id: int, index: int, value: str, now: datetime) -> Answered:
    survey = await repos.notices.survey(survey_id)
    if survey is None:
        raise StaleAction()
    participant = await repos.notices.participant(survey_id, user.id)
    if participant is None:
        raise DomainError("survey.not_invited")
    if survey.state != OPEN:
        raise DomainError("survey.closed", title=Verbatim(survey.title))
    if participant.finished_at is not None:
        raise DomainError("survey.already_finished")
    stored = _check_value(survey, index, value)
    last = index == len(survey.questions) - 1
    if not await repos.notices.answer(survey_id, user.id, index, stored, now, last=last):
        raise DomainError("survey.already_answered")
    if not last:
        return Answered(survey, index + 1)
    points = 0
    if survey.points:
        credited = await repos.ledger.credit_user(
            user.id,
            survey.points,
            f"survey:{survey.id}:{user.id}",
            REASON_SURVEY,
            {"title": survey.title},
            None,
            now,
        )
        points = survey.points if credited is not None else 0
    return Answered(survey, None, points)


# --- results -------------------------------------------------------------------------------


async def close(repos: Repos, user: User, survey_id: int, now: datetime) -> Survey:
    require_commander(user)
    survey = await repos.notices.survey(survey_id)
    if survey is None:
        raise StaleAction()
    if not await repos.notices.close_survey(survey_id, now):
        raise DomainError("survey.already_closed", title=Verbatim(survey.title))
    closed = await repos.notices.survey(survey_id)
    assert closed is not None
    return closed


def _rate(finished: int, invited: int) -> str:
    return f"{finished * 100 / invited:.0f}%" if invited else "0%"


def _question_result(survey: Survey, index: int, counts: dict[str, int]) -> Text | Lines:
    question = survey.questions[index]
    shown = {"number": index + 1, "question": Verbatim(question["text"])}
    answered = sum(counts.values())
    if not answered:
        return Text("survey.result_unanswered", shown)
    if question["type"] == SCALE:
        average = sum(int(value) * n for value, n in counts.items()) / answered
        return Text("survey.result_scale", {**shown, "average": f"{average:.1f}", "count": answered})
    lines = [Text("survey.result_choice", shown)]
    lines.extend(
        Text("survey.result_choice_line", {"choice": Verbatim(label), "count": counts.get(str(position), 0)})
        for position, label in enumerate(question["choices"])
    )
    return Lines(tuple(lines))


def _section(community: Community, survey: Survey, turnout: Turnout, answers: Sequence[AnswerCount]) -> Text:
    by_question: dict[int, dict[str, int]] = {}
    for row in answers:
        by_question.setdefault(row.question, {})[row.answer] = row.count
    return Text(
        "survey.result_grid",
        {
            "grid": grid_label(community, turnout.grid_key),
            "rate": _rate(turnout.finished, turnout.invited),
            "finished": turnout.finished,
            "invited": turnout.invited,
            "questions": Lines(
                tuple(
                    Text(
                        "survey.result_item", {"result": _question_result(survey, i, by_question.get(i, {}))}
                    )
                    for i in range(len(survey.questions))
                )
            ),
        },
    )


async def results(repos: Repos, community: Community, survey: Survey) -> Text:
    """The survey's results per grid (in the community's grid order) with each grid's response rate."""
    turnout = await repos.notices.turnout(survey.id)
    answers = await repos.notices.answer_counts(survey.id)
    order = {grid.key: position for position, grid in enumerate(community.grids)}
    turnout.sort(
        key=lambda t: (t.grid_key is None, order.get(t.grid_key or "", len(order)), t.grid_key or "")
    )
    invited = sum(t.invited for t in turnout)
    finished = sum(t.finished for t in turnout)
    sections = tuple(
        _section(community, survey, t, [a for a in answers if a.grid_key == t.grid_key]) for t in turnout
    )
    return Text(
        "survey.results",
        {
            "title": Verbatim(survey.title),
            "state": Text("survey.state_open" if survey.state == OPEN else "survey.state_closed"),
            "audience": audience_label(community, survey.audience, survey.sample_size),
            "rate": _rate(finished, invited),
            "finished": finished,
            "invited": invited,
            "grids": Lines(sections),
        },
    )


async def recent(repos: Repos, user: User) -> list[Survey]:
    require_commander(user)
    return await repos.notices.recent_surveys(RECENT_SURVEYS)


def close_button(survey: Survey) -> tuple[tuple[Choice, ...], ...]:
    if survey.state == CLOSED:
        return ()
    return ((Choice(Text("survey.button_close"), action=choices.encode(ACTION, "close", survey.id)),),)
