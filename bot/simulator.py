"""`shouwang simulate`: the whole bot in a terminal, with a seeded demo community.

You type as one person at a time (`/as 王阿姨`) and see every message each
person and the police group receive. Time stands still unless you move it
(`/wait 20m`), so escalations can be watched without waiting.
"""

from __future__ import annotations

import asyncio
import io
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from bot.app import Runtime, build_runtime
from bot.channels.console import ConsoleChannel
from bot.community_file import load_community
from bot.settings import Settings
from handlers.accounts import rules as accounts
from handlers.clock import FakeClock
from handlers.community import Community, PoliceGroups
from handlers.messages import Incoming, Location
from storage.repositories import Repos

POLICE_GROUP = "police-group"
CHANNEL = "console"


@dataclass(frozen=True)
class Person:
    key: str
    name: str
    role: str
    grids: tuple[str, ...] = ()
    building: str | None = None
    onboarded: bool = True


PEOPLE = (
    Person("zhang", "张警官", accounts.POLICE),
    Person("li", "李网格员", accounts.GRID_WORKER, grids=("g1",)),
    Person("wang", "王阿姨", accounts.RESIDENT, building="3"),
    Person("chen", "陈先生", accounts.RESIDENT, onboarded=False),
)

HELP = """\
Commands of the simulator (everything else is sent to the bot as the current person):
  /as <name>            switch person: 张警官 (police), 李网格员 (grid worker), 王阿姨, 陈先生 (residents)
  <n>                   press button n of the last message with buttons in your private chat
  /group <n>            press button n of the last card in the police group
  /photo                send a photo (a generated one, with GPS data in its EXIF)
  /location <lat> <lon> share a location
  /sticker, /voice      send something the bot cannot use
  /wait <n>m | <n>h     let time pass (reminders and escalations fire)
  /restart              stop and start the bot again over the same database
  /quit                 leave"""


def demo_community(base: Community) -> Community:
    return base.model_copy(update={"police_groups": PoliceGroups(console=[POLICE_GROUP])})


def demo_photo() -> bytes:
    image = Image.new("RGB", (640, 480), (180, 60, 40))
    exif = Image.Exif()
    exif[0x010F] = "DemoPhone"  # Make
    exif[0x8825] = {1: "N", 2: (31.0, 13.0, 49.0), 3: "E", 4: (121.0, 28.0, 25.0)}  # GPS
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


class Simulator:
    def __init__(self, settings: Settings, write: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.write = write
        self.clock = FakeClock()
        self.console = ConsoleChannel(write=write)
        self.console.labels[POLICE_GROUP] = "警务群 police group"
        for person in PEOPLE:
            self.console.labels[person.key] = person.name
        self.current = PEOPLE[2]
        self.runtime: Runtime | None = None

    async def start(self) -> None:
        community = demo_community(load_community(self.settings.community_path))
        self.runtime = await build_runtime(self.settings, community=community, clock=self.clock)
        self.runtime.add_channel(self.console)
        await self._seed()

    async def stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None

    async def _seed(self) -> None:
        assert self.runtime is not None
        community = self.runtime.community

        async def seed(repos: Repos) -> None:
            now = self.clock.now()
            for person in PEOPLE:
                if await repos.users.by_identity(CHANNEL, person.key) is not None:
                    continue
                user = await accounts.grant_role(
                    repos, CHANNEL, person.key, person.role, list(person.grids), now, person.name
                )
                await repos.users.touch_identity(CHANNEL, person.key, person.key, now)
                if person.onboarded:
                    grid = community.grid_for_building(person.building) if person.building else None
                    await repos.users.update(
                        user.id,
                        language="zh_CN",
                        privacy_accepted_at=now,
                        onboarded_at=now,
                        building=person.building,
                        grid_key=grid.key if grid else None,
                    )

        await self.runtime.engine.run(seed)

    async def run_lines(self, lines: Iterable[str]) -> None:
        for raw in lines:
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not await self.feed(line):
                break

    async def feed(self, line: str, *, echo: bool = True) -> bool:
        """Act on one typed line; False when the user wants to quit."""
        assert self.runtime is not None
        text = line.strip()
        word, _, rest = text.partition(" ")
        if word == "/quit":
            return False
        if word == "/help" and rest == "sim":
            self.write(HELP)
            return True
        if word == "/as":
            person = _find_person(rest.strip())
            if person is None:
                self.write(f"  ! unknown person {rest.strip()!r}; try {', '.join(p.name for p in PEOPLE)}")
            else:
                self.current = person
                self.write(f"— now acting as {person.name} —")
            return True
        if word == "/wait":
            delta = _parse_duration(rest)
            if delta is None:
                self.write("  ! /wait takes a duration such as 20m or 2h")
                return True
            self.clock.advance(delta)
            self.write(f"⏳ {rest.strip()} later")
            await self.runtime.engine.fire_due()
            await self._deliver()
            return True
        if word == "/restart":
            await self.stop()
            await self.start()
            self.write("🔄 bot restarted (same database)")
            await self.runtime.engine.fire_due()
            await self._deliver()
            return True
        if echo:  # a script's lines are shown; a typed one is already on the screen
            self.write(f"{self.current.name} › {text}")
        incoming = self._incoming(text)
        if incoming is None:
            return True
        response = await self.runtime.engine.handle(incoming)
        chat = incoming.chat_id
        translator = self.runtime.translator
        if response.notice is not None:
            self.write("  💬 " + translator.text(response.language, response.notice, self.console.deep_link))
        for reply in response.replies:
            rendered = translator.render(response.language, reply, self.console.deep_link)
            self.console.show(chat, rendered, arrow="←", photos=len(reply.photos))
        await self._deliver()
        return True

    def _incoming(self, text: str) -> Incoming | None:
        person = self.current
        base: dict[str, Any] = {
            "channel": CHANNEL,
            "user_external_id": person.key,
            "display_name": person.name,
        }
        word, _, rest = text.partition(" ")
        if word == "/group":
            action = self.console.pressed(POLICE_GROUP, rest)
            if action is None:
                self.write("  ! no such button in the police group")
                return None
            return Incoming(**base, chat_id=POLICE_GROUP, is_group=True, action=action)
        private = {**base, "chat_id": person.key}
        if word == "/photo":
            return Incoming(**private, photo=demo_photo(), text=rest or None)
        if word == "/location":
            try:
                lat, lon = (float(part) for part in rest.split())
            except ValueError:
                self.write("  ! /location takes two numbers: latitude longitude")
                return None
            return Incoming(**private, location=Location(lat, lon))
        if word in ("/sticker", "/voice"):
            return Incoming(**private, unsupported=word[1:])
        action = self.console.pressed(person.key, text)
        if action is not None:
            return Incoming(**private, action=action)
        if text.startswith("/"):
            return Incoming(**private, command=word[1:].lower(), args=rest.strip())
        assert self.runtime is not None
        menu = self.runtime.translator.menu_command(text)
        if menu is not None:
            return Incoming(**private, command=menu)
        return Incoming(**private, text=text)

    async def _deliver(self) -> None:
        assert self.runtime is not None
        while await self.runtime.delivery.drain():
            pass


def _find_person(name: str) -> Person | None:
    return next((p for p in PEOPLE if name in (p.name, p.key)), None)


def _parse_duration(text: str) -> timedelta | None:
    match = re.fullmatch(r"\s*(\d+)\s*([mh])\s*", text)
    if match is None:
        return None
    amount = int(match.group(1))
    return timedelta(minutes=amount) if match.group(2) == "m" else timedelta(hours=amount)


async def simulate(
    settings: Settings, script_lines: list[str] | None, write: Callable[[str], None] = print
) -> None:
    with tempfile.TemporaryDirectory(prefix="shouwang-sim-") as scratch:
        if "database_url" not in settings.model_fields_set:
            settings = settings.model_copy(
                update={
                    "database_url": f"sqlite:///{scratch}/simulator.db",
                    "media_dir": Path(scratch) / "media",
                }
            )
        simulator = Simulator(settings, write)
        await simulator.start()
        try:
            if script_lines is not None:
                await simulator.run_lines(script_lines)
            else:
                write(HELP)
                write(f"— now acting as {simulator.current.name} —")
                while True:
                    try:
                        line = await asyncio.to_thread(input, f"{simulator.current.name} › ")
                    except EOFError:
                        break
                    if not await simulator.feed(line, echo=False):
                        break
        finally:
            await simulator.stop()
