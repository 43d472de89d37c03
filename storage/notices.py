"""Recurring notices, satisfaction surveys and the figures of the weekly digest.

A survey participant answers one question at a time: each answer is stored
only if it answers the question the participant is at (a conditional UPDATE of
`next_question`), so a repeated or stale button changes nothing and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage import schema as t
from storage.ledger import COMMUNITY, USER
from storage.models import Notice, Report, Survey, SurveyParticipant
from storage.roles import RESIDENT, VOLUNTEER
from storage.rows import Repo, all_models, to_model

OPEN = "open"
CLOSED = "closed"
# Who a survey may invite: residents and volunteers (also residents), never staff.
SURVEYED_ROLES = (RESIDENT, VOLUNTEER)
OPEN_REPORT_STATES = ("submitted", "acknowledged", "assigned", "in_progress")


@dataclass(frozen=True)
class Invitee:
    """A resident a survey may invite, with the private chat they used last (not blocked)."""

    user_id: int
    grid_key: str | None
    channel: str
    chat_id: str
    language: str | None


@dataclass(frozen=True)
class Turnout:
    """Participants of one grid (None: no grid) of a survey: invited, and finished every question."""

    grid_key: str | None
    invited: int
    finished: int


@dataclass(frozen=True)
class AnswerCount:
    grid_key: str | None
    question: int
    answer: str
    count: int


@dataclass(frozen=True)
class ClosedReport:
    """A report closed in a period, as the digest counts it."""

    grid_key: str | None
    state: str
    created_at: datetime
    closed_at: datetime
    rating: int | None


@dataclass(frozen=True)
class Earner:
    user_id: int
    display_name: str
    points: int


class NoticeRepo(Repo):
    # -- recurring notices ------------------------------------------------------

    async def add_notice(
        self,
        author_id: int,
        kind: str,
        priority: str,
        text: str,
        audience: dict[str, Any],
        rule: str,
        now: datetime,
    ) -> Notice:
        notice_id = (
            await self.c.execute(
                t.notices.insert()
                .values(
                    author_id=author_id,
                    kind=kind,
                    priority=priority,
                    text=text,
                    audience=audience,
                    rule=rule,
                    created_at=now,
                )
                .returning(t.notices.c.id)
            )
        ).scalar_one()
        notice = await self.notice(notice_id)
        assert notice is not None
        return notice

    async def notice(self, notice_id: int) -> Notice | None:
        row = (await self.c.execute(sa.select(t.notices).where(t.notices.c.id == notice_id))).first()
        return to_model(Notice, row)

    async def active_notices(self, limit: int = 50) -> list[Notice]:
        rows = await self.c.execute(
            sa.select(t.notices).where(t.notices.c.active).order_by(t.notices.c.id).limit(limit)
        )
        return all_models(Notice, rows)

    async def deactivate_notice(self, notice_id: int) -> bool:
        """Stop a notice; False if it was stopped already (a second click)."""
        result = await self.c.execute(
            t.notices.update().where(t.notices.c.id == notice_id, t.notices.c.active).values(active=False)
        )
        return result.rowcount == 1

    async def notice_sent(self, notice_id: int, now: datetime) -> None:
        await self.c.execute(t.notices.update().where(t.notices.c.id == notice_id).values(last_sent_at=now))

    # -- surveys ------------------------------------------------------------------

    async def add_survey(
        self,
        author_id: int,
        title: str,
        questions: list[dict[str, Any]],
        audience: dict[str, Any],
        sample_size: int | None,
        points: int,
        now: datetime,
    ) -> Survey:
        survey_id = (
            await self.c.execute(
                t.surveys.insert()
                .values(
                    author_id=author_id,
                    title=title,
                    questions=questions,
                    audience=audience,
                    sample_size=sample_size,
                    points=points,
                    state=OPEN,
                    created_at=now,
                )
                .returning(t.surveys.c.id)
            )
        ).scalar_one()
        survey = await self.survey(survey_id)
        assert survey is not None
        return survey

    async def survey(self, survey_id: int) -> Survey | None:
        row = (await self.c.execute(sa.select(t.surveys).where(t.surveys.c.id == survey_id))).first()
        return to_model(Survey, row)

    async def recent_surveys(self, limit: int = 5) -> list[Survey]:
        """Open surveys first, then the latest closed ones; newest first within each."""
        s = t.surveys.c
        rows = await self.c.execute(
            sa.select(t.surveys).order_by(sa.case((s.state == OPEN, 0), else_=1), s.id.desc()).limit(limit)
        )
        return all_models(Survey, rows)

    async def close_survey(self, survey_id: int, now: datetime) -> bool:
        """Close an open survey; False if it was closed already."""
        result = await self.c.execute(
            t.surveys.update()
            .where(t.surveys.c.id == survey_id, t.surveys.c.state == OPEN)
            .values(state=CLOSED, closes_at=now)
        )
        return result.rowcount == 1

    async def reachable_residents(self, grid_key: str | None) -> list[Invitee]:
        """Onboarded residents (and volunteers) of a grid, or of all grids, whom a private message reaches.

        Each comes with the newest private chat they have not blocked the bot in;
        someone who blocked it everywhere is left out.
        """
        u, i = t.users.c, t.identities.c
        query = (
            sa.select(u.id, u.grid_key, u.language, i.channel, i.chat_id)
            .join(t.identities, i.user_id == u.id)
            .where(
                u.role.in_(SURVEYED_ROLES),
                u.onboarded_at.is_not(None),
                i.chat_id.is_not(None),
                i.blocked_at.is_(None),
            )
            .order_by(u.id, i.last_seen_at.desc())
        )
        if grid_key is not None:
            query = query.where(u.grid_key == grid_key)
        newest: dict[int, Invitee] = {}
        for row in await self.c.execute(query):
            if row.id not in newest:
                newest[row.id] = Invitee(row.id, row.grid_key, row.channel, row.chat_id, row.language)
        return list(newest.values())

    async def add_participants(self, survey_id: int, invitees: Sequence[Invitee], now: datetime) -> None:
        if not invitees:
            return
        await self.c.execute(
            t.survey_participants.insert(),
            [
                {"survey_id": survey_id, "user_id": p.user_id, "grid_key": p.grid_key, "invited_at": now}
                for p in invitees
            ],
        )

    async def participant(self, survey_id: int, user_id: int) -> SurveyParticipant | None:
        p = t.survey_participants.c
        row = (
            await self.c.execute(
                sa.select(t.survey_participants).where(p.survey_id == survey_id, p.user_id == user_id)
            )
        ).first()
        return to_model(SurveyParticipant, row)

    async def answer(
        self, survey_id: int, user_id: int, question: int, answer: str, now: datetime, *, last: bool
    ) -> bool:
        """Store the answer to `question` if that is the question the participant is at.

        False for a repeated or stale button, or a participant who finished:
        nothing is stored twice and no question is skipped.
        """
        p = t.survey_participants.c
        moved = await self.c.execute(
            t.survey_participants.update()
            .where(
                p.survey_id == survey_id,
                p.user_id == user_id,
                p.next_question == question,
                p.finished_at.is_(None),
            )
            .values(next_question=question + 1, finished_at=now if last else None)
        )
        if moved.rowcount != 1:
            return False
        await self.c.execute(
            t.survey_answers.insert().values(
                survey_id=survey_id, user_id=user_id, question=question, answer=answer, answered_at=now
            )
        )
        return True

    async def turnout(self, survey_id: int) -> list[Turnout]:
        p = t.survey_participants.c
        finished = sa.func.sum(sa.case((p.finished_at.is_not(None), 1), else_=0))
        rows = await self.c.execute(
            sa.select(p.grid_key, sa.func.count(), finished)
            .where(p.survey_id == survey_id)
            .group_by(p.grid_key)
        )
        return [Turnout(grid, int(invited), int(done or 0)) for grid, invited, done in rows]

    async def answer_counts(self, survey_id: int) -> list[AnswerCount]:
        """How often each answer was given to each question, by the participant's grid when invited."""
        a, p = t.survey_answers.c, t.survey_participants.c
        rows = await self.c.execute(
            sa.select(p.grid_key, a.question, a.answer, sa.func.count())
            .select_from(t.survey_answers)
            .join(
                t.survey_participants,
                (p.survey_id == a.survey_id) & (p.user_id == a.user_id),
            )
            .where(a.survey_id == survey_id)
            .group_by(p.grid_key, a.question, a.answer)
        )
        return [AnswerCount(grid, int(question), answer, int(n)) for grid, question, answer, n in rows]

    # -- the weekly digest ----------------------------------------------------------

    async def reports_opened(self, start: datetime, end: datetime) -> list[tuple[str | None, str, int]]:
        """(grid, current state, count) of the reports filed in [start, end)."""
        r = t.reports.c
        rows = await self.c.execute(
            sa.select(r.grid_key, r.state, sa.func.count())
            .where(r.created_at >= start, r.created_at < end)
            .group_by(r.grid_key, r.state)
        )
        return [(grid, state, int(count)) for grid, state, count in rows]

    async def reports_closed(self, start: datetime, end: datetime) -> list[ClosedReport]:
        r = t.reports.c
        rows = await self.c.execute(
            sa.select(r.grid_key, r.state, r.created_at, r.closed_at, r.rating)
            .where(r.closed_at >= start, r.closed_at < end)
            .order_by(r.id)
        )
        return all_models(ClosedReport, rows)

    async def open_reports(self) -> int:
        r = t.reports.c
        query = sa.select(sa.func.count()).where(r.state.in_(OPEN_REPORT_STATES))
        return int((await self.c.execute(query)).scalar_one())

    async def unacknowledged_reports(self) -> list[Report]:
        """Reports nobody has acknowledged yet: the only ones that can be overdue."""
        rows = await self.c.execute(
            sa.select(t.reports).where(t.reports.c.state == "submitted").order_by(t.reports.c.id)
        )
        return all_models(Report, rows)

    async def top_earners(self, start: datetime, end: datetime, limit: int) -> list[Earner]:
        """Who received most points from the community in [start, end), net of reversals in it.

        People who opted out of leaderboards are left out.
        """
        e, u = t.ledger_entries.c, t.users.c
        d, c = t.point_accounts.alias("d"), t.point_accounts.alias("c")
        in_period = (e.created_at >= start) & (e.created_at < end)
        moves = sa.union_all(
            sa.select(c.c.user_id.label("user_id"), e.amount.label("points"))
            .select_from(t.ledger_entries)
            .join(d, d.c.id == e.debit_account_id)
            .join(c, c.c.id == e.credit_account_id)
            .where(in_period, d.c.kind == COMMUNITY, c.c.kind == USER),
            sa.select(d.c.user_id.label("user_id"), (-e.amount).label("points"))
            .select_from(t.ledger_entries)
            .join(d, d.c.id == e.debit_account_id)
            .join(c, c.c.id == e.credit_account_id)
            .where(in_period, d.c.kind == USER, c.c.kind == COMMUNITY),
        ).subquery()
        points = sa.func.sum(moves.c.points).label("points")
        rows = await self.c.execute(
            sa.select(moves.c.user_id, u.display_name, points)
            .join(t.users, u.id == moves.c.user_id)
            .where(sa.not_(u.leaderboard_opt_out))
            .group_by(moves.c.user_id, u.display_name)
            .having(sa.func.sum(moves.c.points) > 0)
            .order_by(points.desc(), moves.c.user_id)
            .limit(limit)
        )
        return [Earner(row.user_id, row.display_name, int(row.points)) for row in rows]
