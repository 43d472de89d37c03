"""The engine: the one entry point every channel calls (an `Incoming` in, a `Response` out), the
scheduler's tick, and the unit of work (`Engine.run`) that chat input, scheduled jobs, the command
line and web requests share.

Each input is handled in one database transaction, so the conversation step, the report and the
notifications it causes are stored together or not at all. The engine knows no feature by name:
commands, words, buttons, flows and schedules come from the features' declarations (the registry).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import TypeVar

from handlers import choices, conversation, features, help, notify, scheduled
from handlers.clock import Clock
from handlers.community import Community
from handlers.context import Ctx
from handlers.errors import DomainError, PassToDraft, StaleAction
from handlers.media import MediaStore
from handlers.messages import Choice, DeepLink, Incoming, Reply, Response, Text
from handlers.registry import Fire, Gathered, OnStart, Registry
from handlers.text import clean_name, clean_text
from storage.db import Busy, Database
from storage.kinds import UnknownKind
from storage.models import Conversation, Schedule, User
from storage.repositories import Repos
from storage.roles import STAFF

log = logging.getLogger(__name__)

T = TypeVar("T")
# Identity rows are touched at most this often, to keep the hot path read-only.
TOUCH_INTERVAL = timedelta(minutes=10)


class Engine:
    def __init__(
        self,
        database: Database,
        community: Community,
        clock: Clock,
        media: MediaStore,
        on_outbox: Callable[[], None] | None = None,
        registry: Registry | None = None,
        on_fired: Callable[[str, timedelta], None] | None = None,
    ) -> None:
        self.database = database
        self.community = community
        self.clock = clock
        self.media = media
        self.on_outbox = on_outbox or (lambda: None)
        # Told of each schedule fired: its kind and how late (the runtime's metrics).
        self.on_fired = on_fired or (lambda kind, late: None)
        self.registry = registry or features.REGISTRY

    async def run(self, fn: Callable[[Repos], Awaitable[T]], *, read_only: bool = False) -> T:
        """One unit of work: one transaction, its repositories, and the delivery worker woken if
        `fn` queued outbox rows. If `fn` raises, nothing it wrote is stored (and nobody is woken).

        read_only=True is for long reading (reports over all of history): it holds up no chat.
        """
        async with self.database.transaction(read_only=read_only) as connection:
            repos = Repos(connection, self.community.tz, self.registry.kinds)
            result = await fn(repos)
            enqueued = repos.outbox.enqueued
        if repos.forgotten_media:
            await self.media.forget(repos.forgotten_media)
        if enqueued:
            self.on_outbox()
        return result

    async def handle(self, inp: Incoming) -> Response:
        if inp.is_group and inp.command is None and inp.action is None:
            # Ordinary group chatter is none of the bot's business: not even a user row.
            return Response(language=self.community.default_language)
        inp = _cleaned(inp)
        try:
            ctx = await self.run(lambda repos: self._handle(repos, inp))
        except Busy:
            log.warning("database busy: input not handled yet", extra={"channel": inp.channel})
            return Response(
                replies=[Reply(Text("error.busy"))],
                notice=Text("error.busy"),
                language=self.community.default_language,
                busy=True,
            )
        except Exception:
            # Nothing of this input is stored; what was stored before stays.
            log.exception("handling failed", extra={"channel": inp.channel})
            return Response(
                replies=[Reply(Text("error.internal"))],
                notice=Text("error.internal"),
                language=self.community.default_language,
            )
        ctx.response.language = ctx.language
        return ctx.response

    async def _handle(self, repos: Repos, inp: Incoming) -> Ctx:
        user, draft = await _resolve_user(repos, inp, self.clock)
        ctx = Ctx(
            repos,
            self.community,
            self.clock,
            self.media,
            user,
            inp,
            draft=draft,
            links=self.registry.deep_links,
            personal_data=self.registry.personal_data,
        )
        try:
            await self._dispatch(ctx)
        except DomainError as refused:
            _explain(ctx, refused)
        if inp.is_group:
            await self._move_to_private(ctx)
        return ctx

    async def prepare(self) -> None:
        """At start-up: refuse stored rows of unknown kinds, then let each feature arm the recurring
        schedules it needs (idempotent)."""
        await self.run(self.registry.check_stored)
        for feature in self.registry.features:
            if feature.on_start is not None:
                await self.run(partial(self._on_start, feature.on_start))

    async def _on_start(self, on_start: OnStart, repos: Repos) -> None:
        await on_start(repos, self.community, self.clock.now())

    async def fire_due(self) -> int:
        """Fire due schedules and discard idle drafts; each happens once, even across restarts."""
        fired = 0
        for schedule in await self.run(lambda repos: repos.schedules.due(self.clock.now())):
            try:
                self.registry.check_schedule_kind(schedule.kind)
            except UnknownKind:
                # Left pending, not lost: a later version may know it; start-up names it meanwhile.
                log.error("schedule of an unknown kind", extra={"kind": schedule.kind, "ref": schedule.ref})
                continue
            fire = self.registry.schedules[schedule.kind]
            if isinstance(fire, Gathered):
                gathered = await self.run(partial(self._gather, schedule, fire), read_only=True)
                done = await self.run(partial(self._fire_gathered, schedule, fire, gathered))
            else:
                done = await self.run(partial(self._fire, schedule, fire))
            if done:
                fired += 1
                self.on_fired(schedule.kind, self.clock.now() - schedule.due_at)
        idle = await self.run(lambda repos: scheduled.idle_drafts(repos, self.community, self.clock.now()))
        for draft in idle:
            fired += await self.run(partial(self._expire, draft))
        return fired

    async def _fire(self, schedule: Schedule, fire: Fire, repos: Repos) -> bool:
        if not await repos.schedules.claim(schedule.id, self.clock.now()):
            return False
        await fire(repos, self.community, self.clock, schedule)
        return True

    async def _gather(self, schedule: Schedule, fire: Gathered, repos: Repos) -> object:
        return await fire.gather(repos, self.community, self.clock, schedule)

    async def _fire_gathered(
        self, schedule: Schedule, fire: Gathered, gathered: object, repos: Repos
    ) -> bool:
        if not await repos.schedules.claim(schedule.id, self.clock.now()):
            return False  # another process fired it meanwhile: what was gathered is dropped
        await fire.fire(repos, self.community, self.clock, schedule, gathered)
        return True

    async def _expire(self, draft: Conversation, repos: Repos) -> bool:
        return await scheduled.expire_draft(repos, self.community, draft, self.clock.now(), self.registry)

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
        if inp.location is not None and not inp.location.valid:
            await self._bad_location(ctx, draft)
            return
        if inp.live:
            flow = self.registry.flows.get(draft.flow) if draft is not None else None
            if flow is None or not flow.accepts_live_location:
                return  # a moving dot on a map is not something to answer
        if draft is not None:
            flow = self.registry.flows.get(draft.flow)
            if flow is None:
                await conversation.finish(ctx)
                ctx.say("error.conversation_lost")
                return
            ctx.data = dict(draft.data)
            await conversation.advance(ctx, flow, draft.step)
            return
        if ctx.user.onboarded_at is None:
            await self._welcome(ctx, "")
            return
        word = self.registry.words.get(inp.text.strip().lower()) if inp.text else None
        if word is not None:
            await word(ctx)
        elif inp.unsupported:
            ctx.say("error.unsupported_input")
        else:
            ctx.say("help.hint", keyboard="main")

    async def _bad_location(self, ctx: Ctx, draft: Conversation | None) -> None:
        """A point off the globe (a broken client, a crafted update): said so, and the question
        the person is at asked again; no flow ever sees it."""
        if ctx.inp.live:
            return  # a moving dot: answering each update would flood the chat
        ctx.say("error.location_invalid")
        if draft is None:
            return
        flow = self.registry.flows.get(draft.flow)
        step = flow.steps.get(draft.step) if flow is not None else None
        if flow is not None and step is not None:
            ctx.data = dict(draft.data)
            await step.ask(ctx)
            await conversation.save(ctx, flow, draft.step)

    async def _welcome(self, ctx: Ctx, payload: str) -> None:
        if self.registry.welcome is None:
            raise RuntimeError("no feature welcomes people who have not finished onboarding")
        await self.registry.welcome(ctx, payload)

    async def _command(self, ctx: Ctx, command: str, has_draft: bool) -> None:
        if command == "cancel":
            if has_draft:
                await conversation.finish(ctx)
                ctx.say("conversation.cancelled", keyboard="main")
            else:
                ctx.say("conversation.nothing_to_cancel")
            return
        if command == "help":
            await help.show_help(ctx, self.registry)
            return
        if command in self.registry.open_commands:
            await self.registry.open_commands[command](ctx)
            return
        if command not in self.registry.commands:
            ctx.say("error.unknown_command", command=command[:32])
            return
        if ctx.user.onboarded_at is None:
            # A command that is also a deep link (/report) opens once onboarding is done.
            await self._welcome(ctx, command if command in self.registry.deep_links else "")
            return
        await self.registry.commands[command](ctx)

    async def _action(self, ctx: Ctx, draft: Conversation | None) -> None:
        parts = choices.decode(ctx.inp.action)
        if parts is None:
            raise StaleAction()
        action = self.registry.actions.get(parts[0])
        if action is not None:
            try:
                await action(ctx, parts)
                return
            except PassToDraft:
                pass
        if draft is None:
            raise StaleAction()
        flow = self.registry.flows.get(draft.flow)
        if flow is None:
            raise StaleAction()
        ctx.data = dict(draft.data)
        await conversation.advance(ctx, flow, draft.step)

    async def _dispatch_group(self, ctx: Ctx) -> None:
        inp = ctx.inp
        if inp.action is not None:
            await self._action(ctx, ctx.draft)
            return
        assert inp.command is not None  # plain chatter was turned away in handle()
        in_group = self.registry.group_commands.get(inp.command)
        if in_group is not None:
            await in_group(ctx)
            return
        button = Choice(Text("group.open_private"), deep_link=DeepLink("start").payload)
        ctx.say("group.use_private", choices=((button,),))

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


async def _resolve_user(repos: Repos, inp: Incoming, clock: Clock) -> tuple[User, Conversation | None]:
    """The user behind a platform identity (created on first contact) and their running conversation."""
    now = clock.now()
    found = await repos.users.by_identity_with_draft(inp.channel, inp.user_external_id)
    if found is not None:
        user, identity, draft = found
        # Only a private chat is a way to reach the person later.
        # Writing again after blocking the bot is unblocking it.
        stale = now - identity.last_seen_at > TOUCH_INTERVAL or identity.blocked_at is not None
        if not inp.is_group and (identity.chat_id != inp.chat_id or stale):
            await repos.users.touch_identity(inp.channel, inp.user_external_id, inp.chat_id, now)
        consented = user.privacy_accepted_at is not None or user.role in STAFF
        if (
            consented
            and user.display_name == inp.user_external_id
            and inp.display_name not in ("", user.display_name)
        ):
            # The platform id stood in for a name (granted from the command line without one, the
            # name could not be read then, or the person had not consented yet): the name the
            # channel now knows replaces it.
            name = inp.display_name[:128]
            await repos.users.update(user.id, display_name=name)
            user = replace(user, display_name=name)
        return user, draft
    # Minimum collection: the platform's name for the person is kept only once they accept the
    # privacy notice (onboarding stores it then); until then their platform id stands in.
    user = await repos.users.create(inp.user_external_id[:128], now)
    chat_id = None if inp.is_group else inp.chat_id
    await repos.users.add_identity(inp.channel, inp.user_external_id, user.id, chat_id, now)
    return user, None


def _cleaned(inp: Incoming) -> Incoming:
    """The input without the invisible characters that make names and texts read otherwise
    (handlers/text.py): everything stored from it, and shown to others, is clean."""
    return replace(
        inp,
        display_name=clean_name(inp.display_name),
        text=clean_text(inp.text) if inp.text else inp.text,
        args=clean_text(inp.args),
    )


def _explain(ctx: Ctx, refused: DomainError) -> None:
    # In a group only the presser sees a toast; the group is not told about it.
    if not ctx.inp.is_group:
        ctx.say(refused.key, **refused.params)
    if ctx.inp.action is not None:
        ctx.notice(refused.key, **refused.params)
