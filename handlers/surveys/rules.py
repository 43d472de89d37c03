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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers import notify
from handlers.accounts.rules import COMMANDERS
from handlers.community import Community
from handlers.errors import DomainError, PermissionDenied, StaleAction
from handlers.messages import Reply, reply_to_json
from handlers.registry import Lane
from storage.models import Survey, User
from storage.notices import OPEN, AnswerCount, Invitee, Turnout
from storage.repositories import Repos

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


def audience_grid(audience: dict[str, Any]) -> str | None:
    grids = audience.get("grids") or []
    return str(grids[0]) if audience.get("type") == GRIDS and grids else None


async def eligible(repos: Repos, audience: dict[str, Any]) -> list[Invitee]:
    return await repos.notices.reachable_residents(audience_grid(audience))


def draw_sample(invitees: Sequence[Invitee], size: int | None) -> list[Invitee]:
    if size is None or size >= len(invitees):
        return list(invitees)
    return secrets.SystemRandom().sample(list(invitees), size)


# --- inviting residents ---------------------------------------------------------------------------


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
    invitation: Callable[[Survey], Reply],
) -> Started:
    """Store the survey, draw its participants and invite each of them with the first question.

    `invitation` words the invitation (the views' business); it is sent as it is to everyone.
    """
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
        await repos.outbox.enqueue(
            invitee.channel, invitee.chat_id, language, notify.MESSAGE, payload, now, priority=Lane.BULK
        )
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
        raise DomainError("survey.closed", title=survey.title)
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
        raise DomainError("survey.already_closed", title=survey.title)
    closed = await repos.notices.survey(survey_id)
    assert closed is not None
    return closed


@dataclass(frozen=True)
class Results:
    """A survey's turnout per grid (in the community's grid order) and the answers counted per grid."""

    survey: Survey
    turnout: list[Turnout]
    answers: list[AnswerCount]

    @property
    def invited(self) -> int:
        return sum(t.invited for t in self.turnout)

    @property
    def finished(self) -> int:
        return sum(t.finished for t in self.turnout)

    def counts(self, grid_key: str | None) -> dict[int, dict[str, int]]:
        """question → answer → how many, in one grid."""
        by_question: dict[int, dict[str, int]] = {}
        for row in self.answers:
            if row.grid_key == grid_key:
                by_question.setdefault(row.question, {})[row.answer] = row.count
        return by_question


async def results(repos: Repos, community: Community, survey: Survey) -> Results:
    turnout = await repos.notices.turnout(survey.id)
    answers = await repos.notices.answer_counts(survey.id)
    order = {grid.key: position for position, grid in enumerate(community.grids)}
    turnout.sort(
        key=lambda t: (t.grid_key is None, order.get(t.grid_key or "", len(order)), t.grid_key or "")
    )
    return Results(survey, turnout, list(answers))


async def recent(repos: Repos, user: User) -> list[Survey]:
    require_commander(user)
    return await repos.notices.recent_surveys(RECENT_SURVEYS)
