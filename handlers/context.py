"""What a handler gets to work with for one input."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from handlers.messages import Choice, Document, Incoming, Keyboard, Reply, Response, Text

if TYPE_CHECKING:
    from handlers.clock import Clock
    from handlers.community import Community
    from handlers.media import MediaStore
    from handlers.registry import PersonalData
    from storage.models import Conversation, User
    from storage.repositories import Repos


@dataclass
class Ctx:
    repos: Repos
    community: Community
    clock: Clock
    media: MediaStore
    user: User
    inp: Incoming
    # The conversation stored for this person and channel when the input arrived.
    draft: Conversation | None = None
    response: Response = field(default_factory=Response)
    # Draft of the running conversation; the engine saves it after each step.
    data: dict[str, Any] = field(default_factory=dict)
    # The features' deep links (`/start <payload>` → what it opens), for onboarding to follow.
    links: Mapping[str, Callable[[Ctx], Awaitable[None]]] = field(default_factory=dict)
    # Every feature's personal data (the registry's), for /mydata and erasure.
    personal_data: tuple[PersonalData, ...] = ()

    @property
    def channel(self) -> str:
        return self.inp.channel

    @property
    def language(self) -> str:
        return self.user.language or self.community.default_language

    def say(
        self,
        key: str,
        choices: tuple[tuple[Choice, ...], ...] = (),
        keyboard: Keyboard | None = None,
        photos: tuple[int, ...] = (),
        document: Document | None = None,
        **params: Any,
    ) -> None:
        self.response.replies.append(Reply(Text(key, params), choices, photos, keyboard, document))

    def notice(self, key: str, **params: Any) -> None:
        self.response.notice = Text(key, params)

    def short_answer(self, max_chars: int, empty_key: str) -> str | None:
        """The typed answer, or None after explaining politely that it is missing or too long."""
        text = (self.inp.text or "").strip()
        if not text:
            self.say(empty_key)
            return None
        if len(text) > max_chars:
            self.say("review.text_too_long", max=max_chars, length=len(text))
            return None
        return text

    async def update_user(self, **values: Any) -> None:
        """Store changes to the speaker's profile and keep `user` in step without reading it back."""
        await self.repos.users.update(self.user.id, **values)
        self.user = replace(self.user, **values)

    async def reload_user(self) -> None:
        user = await self.repos.users.get(self.user.id)
        assert user is not None
        self.user = user
