"""A channel that lives in a terminal: the offline simulator's stand-in for a chat app.

Buttons are shown as numbered lines; typing the number presses the button, the
same numbered-menu fallback WeChat Work uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

from bot.i18n import RenderedButton, RenderedMessage

NAME = "console"
PREVIEW_LINES = 6


@dataclass
class ConsoleChannel:
    name: str = NAME
    write: Callable[[str], None] = print
    # chat id -> label shown in the transcript
    labels: dict[str, str] = field(default_factory=dict)
    # chat id -> the numbered buttons of the last message that had any
    menus: dict[str, list[RenderedButton]] = field(default_factory=dict)
    _ids: count[int] = field(default_factory=lambda: count(1))

    def deep_link(self, payload: str) -> str:
        return f"/start {payload}"

    def show(self, chat_id: str, message: RenderedMessage, *, arrow: str, photos: int = 0) -> None:
        who = self.labels.get(chat_id, chat_id)
        lines = message.text.splitlines() or [""]
        self.write(f"  {arrow} [{who}] {lines[0]}")
        for line in lines[1:]:
            self.write(f"      {line}")
        if photos:
            self.write(f"      🖼 ×{photos}")
        document = message.document
        if document is not None:
            self.write(f"      📎 {document.filename} ({len(document.data)} bytes)")
            if document.mime.startswith("text/"):
                # A glimpse of the file, as a chat app's preview would give.
                preview = document.data.decode("utf-8-sig", errors="replace").splitlines()
                for line in preview[:PREVIEW_LINES]:
                    self.write(f"      │ {line}")
                if len(preview) > PREVIEW_LINES:
                    self.write("      │ …")
        numbered: list[RenderedButton] = []
        for row in message.buttons:
            cells = []
            for button in row:
                numbered.append(button)
                target = f" → {button.url}" if button.url else ""
                cells.append(f"[{len(numbered)}] {button.label}{target}")
            self.write("      " + "   ".join(cells))
        if message.keyboard_labels:
            self.write("      ⌨ " + " | ".join(message.keyboard_labels))
        if numbered:
            self.menus[chat_id] = numbered

    async def send(
        self, chat_id: str, message: RenderedMessage, photos: list[bytes], *, priority: int = 0
    ) -> str:
        self.show(chat_id, message, arrow="→", photos=len(photos))
        return str(next(self._ids))

    async def edit(self, chat_id: str, message_ref: str, message: RenderedMessage) -> None:
        self.show(chat_id, message, arrow=f"✎ #{message_ref}")

    def pressed(self, chat_id: str, text: str) -> str | None:
        """The action of button number `text` in this chat's last menu, if that is what was typed."""
        menu = self.menus.get(chat_id)
        if not menu or not text.strip().isdigit():
            return None
        index = int(text.strip()) - 1
        if 0 <= index < len(menu):
            return menu[index].action
        return None
