"""The one entry point every channel calls: an `Incoming` in, a `Response` out.

Each input is handled in one database transaction, so the conversation step,
the report and the notifications it causes are stored together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from handlers import (
    choices,
    conversation,
    features,
    help,
    invites,
    link_accounts,
    my_reports,
    notify,
    onboarding,
    report_hazard,
    review_reports,
    scheduled,
    tasks,
)
from handlers.clock import Clock
from handlers.community import Community
from handlers.context import Ctx
from handlers.errors import DomainError, StaleAction
from handlers.media import MediaStore
from handlers.messages import Choice, DeepLink, Incoming, Reply, Response, Text
from handlers.services import accounts
from storage.db import Database
from storage.repositories import Repos

log = logging.getLogger(__name__)

# Typed words that start a report, as residents say it in chat.
REPORT_WORDS = frozenset({"上报", "报告", "举报", "上報", "報告", "舉報", "report", "/report"})
# Commands that make sense inside a group chat; the rest belong to private chats.
GROUP_COMMANDS = frozenset({"start", "report", "help"})


class Engine:
    def __init__(
        self,
        database: Database,
        community: Community,
        clock: Clock,
        media: MediaStore,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self.community = community
        self.clock = clock
        self.media = media
        self.on_outbox = on_outbox or (lambda: None)

    async def handle(self, inp: Incoming) -> Response:
        if inp.is_group and inp.command is None and inp.action is None:
            # Ordinary group chatter is none of the bot's business: not even a user row.
            return Response(language=self.community.default_language)
        try:
            async with self.database.transaction() as connection:
                # The community's time zone decides which month points count towards.
                repos = Repos(connection, self.community.tz)
                user, draft = await accounts.resolve_user(
                    repos,
                    inp.channel,
                    inp.user_external_id,
                    inp.chat_id,
                    inp.display_name,
                    self.clock.now(),
                    private=not inp.is_group,
                )
                ctx = Ctx(repos, self.community, self.clock, self.media, user, inp, draft=draft)
                try:
                    await self._dispatch(ctx)
                except DomainError as refused:
                    _explain(ctx, refused)
                if inp.is_group:
                    await self._move_to_private(ctx)
                enqueued = repos.outbox.enqueued
        except Exception:
            # Nothing of this input is stored; what was stored before stays.
            log.exception("handling failed", extra={"channel": inp.channel})
            return Response(
                replies=[Reply(Text("error.internal"))],
                notice=Text("error.internal"),
                language=self.community.default_language,
            )
        if enqueued:
            self.on_outbox()
        ctx.response.language = ctx.language
        return ctx.response

    async def prepare(self) -> None:
        """At start-up: let each feature arm the recurring schedules it needs (idempotent)."""
        for feature in features.FEATURES:
            if feature.on_start is not None:
                async with self.database.transaction() as connection:
                    await feature.on_start(
                        Repos(connection, self.community.tz), self.community, self.clock.now()
                    )

    async def fire_due(self) -> int:
        """Fire due schedules and discard idle drafts; each happens once, even across restarts."""
        fired = 0
        async with self.database.transaction() as connection:
            due = await Repos(connection).schedules.due(self.clock.now())
        for schedule in due:
            async with self.database.transaction() as connection:
                repos = Repos(connection, self.community.tz)
                if not await repos.schedules.claim(schedule.id, self.clock.now()):
                    continue
                await scheduled.fire(repos, self.community, self.clock, schedule)
                fired += 1
        async with self.database.transaction() as connection:
            idle = await scheduled.idle_drafts(Repos(connection), self.community, self.clock.now())
        for draft in idle:
            async with self.database.transaction() as connection:
                if await scheduled.expire_draft(Repos(connection), self.community, draft, self.clock.now()):
                    fired += 1
        if fired:
            self.on_outbox()
        return fired

    async def _dispatch(self, ctx: Ctx) -> None:
        inp = ctx.inp
        if inp.is_group:
            await self._dispatch_group(ctx)
            return
        draft = ctx.draft
        if inp.command is not None:
            await self._command(ctx, inp.command, draft is not None)
            return
        if inp.action is not None:
            await self._action(ctx, draft)
            return
        if inp.live:
            flow = conversation.flow_named(draft.flow) if draft is not None else None
            if flow is None or not flow.accepts_live_location:
                return  # a moving dot on a map is not something to answer
        if draft is not None:
            flow = conversation.flow_named(draft.flow)
            if flow is None:
                await conversation.finish(ctx)
                ctx.say("error.conversation_lost")
                return
            ctx.data = dict(draft.data)
            await conversation.advance(ctx, flow, draft.step)
            return
        if ctx.user.onboarded_at is None:
            await onboarding.start(ctx)
            return
        if inp.text and inp.text.strip().lower() in REPORT_WORDS:
            await report_hazard.start(ctx)
        elif inp.unsupported:
            ctx.say("error.unsupported_input")
        else:
            ctx.say("help.hint", keyboard="main")

    async def _command(self, ctx: Ctx, command: str, has_draft: bool) -> None:
        if command == "cancel":
            if has_draft:
                await conversation.finish(ctx)
                ctx.say("conversation.cancelled", keyboard="main")
            else:
                ctx.say("conversation.nothing_to_cancel")
            return
        if command == "start":
            await onboarding.start(ctx, ctx.inp.args.strip())
            return
        if command == "language":
            await help.ask_language(ctx)
            return
        if command == "help":
            await help.show_help(ctx)
            return
        if command == "link":
            # Linking first is how a new account inherits a finished profile.
            await link_accounts.link(ctx)
            return
        if command not in COMMANDS:
            ctx.say("error.unknown_command", command=command[:32])
            return
        if ctx.user.onboarded_at is None:
            await onboarding.start(ctx, onboarding.REPORT_PAYLOAD if command == "report" else "")
            return
        await COMMANDS[command](ctx)

    async def _action(self, ctx: Ctx, draft: object) -> None:
        parts = choices.decode(ctx.inp.action)
        if parts is None:
            raise StaleAction()
        kind = parts[0]
        if kind == "rep":
            await review_reports.on_action(ctx, parts)
        elif kind == "rate" and parts[1:] != ("skip",):
            await my_reports.on_rate(ctx, parts)
        elif kind == "lang" and not (draft is not None and getattr(draft, "flow", "") == "onboarding"):
            await help.on_language(ctx, parts)
        elif kind in features.ACTIONS:
            await features.ACTIONS[kind](ctx, parts)
        elif draft is not None:
            flow = conversation.flow_named(draft.flow)  # type: ignore[attr-defined]
            if flow is None:
                raise StaleAction()
            ctx.data = dict(draft.data)  # type: ignore[attr-defined]
            await conversation.advance(ctx, flow, draft.step)  # type: ignore[attr-defined]
        else:
            raise StaleAction()

    async def _dispatch_group(self, ctx: Ctx) -> None:
        inp = ctx.inp
        if inp.action is not None:
            await self._action(ctx, ctx.draft)
            return
        assert inp.command is not None  # plain chatter was turned away in handle()
        link = DeepLink(onboarding.REPORT_PAYLOAD if inp.command == "report" else "start")
        button = Choice(
            Text("group.open_private_report" if inp.command == "report" else "group.open_private"),
            deep_link=link.payload,
        )
        key = "group.report_privately" if inp.command == "report" else "group.use_private"
        ctx.say(key, choices=((button,),))

    async def _move_to_private(self, ctx: Ctx) -> None:
        """Answers to a button pressed in a group go to the presser's private chat."""
        if ctx.inp.action is None or not ctx.response.replies:
            return
        replies, ctx.response.replies = ctx.response.replies, []
        reached = False
        for reply in replies:
            reached = await notify.to_user(ctx.repos, ctx.community, ctx.user, reply, ctx.clock.now())
        if not reached:
            ctx.notice("group.start_private_first")


async def _report(ctx: Ctx) -> None:
    draft = ctx.draft
    if draft is not None and draft.flow == report_hazard.FLOW.name:
        # Resume rather than throw away what was typed so far.
        ctx.data = dict(draft.data)
        ctx.say("report.resuming")
        await report_hazard.FLOW.steps[draft.step].ask(ctx)
        return
    await report_hazard.start(ctx)


COMMANDS = {
    "report": _report,
    "myreports": my_reports.list_mine,
    "tasks": tasks.list_tasks,
    "invite": invites.create,
    **features.COMMANDS,
}


def _explain(ctx: Ctx, refused: DomainError) -> None:
    # In a group only the presser sees a toast; the group is not told about it.
    if not ctx.inp.is_group:
        ctx.say(refused.key, **refused.params)
    if ctx.inp.action is not None:
        ctx.notice(refused.key, **refused.params)
