"""The `shouwang` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from bot import logging_setup
from bot.community_file import CommunityFileError, load_community
from bot.i18n import Translator
from bot.settings import Settings
from handlers.accounts import rules as accounts
from handlers.clock import SystemClock
from handlers.community import LANGUAGES
from handlers.errors import DomainError
from handlers.media import MediaStore
from handlers.privacy import rights
from handlers.privacy import rules as privacy
from handlers.privacy import views as privacy_views
from handlers.router import Engine
from storage.audit import VIA_CLI
from storage.db import Database
from storage.repositories import Repos


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shouwang", description="守望 Shouwang community-safety bot")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot on the configured channels (the simulator when none is)")
    simulate = commands.add_parser("simulate", help="the bot in this terminal, with a demo community")
    simulate.add_argument(
        "--script", type=Path, help="run these lines non-interactively and print the transcript"
    )
    commands.add_parser("migrate", help="bring the database schema up to date")
    role = commands.add_parser("role", help="manage roles")
    role_commands = role.add_subparsers(dest="role_command", required=True)
    grant = role_commands.add_parser("grant", help="give a platform user a role (the first police/admin)")
    grant.add_argument("--channel", required=True, choices=["telegram", "wecom", "console"])
    grant.add_argument("--user", required=True, help="the platform user id, e.g. a Telegram numeric id")
    grant.add_argument("--role", required=True, choices=list(accounts.ROLES))
    grant.add_argument("--grid", action="append", default=[], help="grid key (grid workers; repeatable)")
    grant.add_argument("--name", help="display name until the person talks to the bot")
    person = commands.add_parser("person", help="a person's data rights: export or erase on request")
    person_commands = person.add_subparsers(dest="person_command", required=True)
    erase = person_commands.add_parser("erase", help="erase a person (their request made in person)")
    export = person_commands.add_parser("export", help="write everything held about a person to files")
    for sub in (erase, export):
        sub.add_argument("--channel", required=True, choices=["telegram", "wecom", "console"])
        sub.add_argument("--user", required=True, help="the platform user id, e.g. a Telegram numeric id")
    export.add_argument(
        "--out", required=True, type=Path, help="the JSON file; the readable text goes next to it (.txt)"
    )
    export.add_argument("--language", choices=list(LANGUAGES), help="of the readable text (default: theirs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        problems = "\n".join(f"  {e['msg'].removeprefix('Value error, ')}" for e in error.errors())
        print(f"shouwang: the settings are not valid:\n{problems}", file=sys.stderr)
        return 2
    try:
        if args.command == "run":
            if settings.telegram_token or settings.wecom_enabled:
                logging_setup.configure(settings.log_level)
                from bot.app import run

                asyncio.run(run(settings))
            else:
                logging_setup.configure("WARNING")
                print("SHOUWANG_TELEGRAM_TOKEN is not set: starting the offline simulator.", file=sys.stderr)
                from bot.simulator import simulate

                asyncio.run(simulate(settings, None))
        elif args.command == "simulate":
            logging_setup.configure("WARNING")
            from bot.simulator import simulate

            lines = args.script.read_text(encoding="utf-8").splitlines() if args.script else None
            asyncio.run(simulate(settings, lines))
        elif args.command == "migrate":
            logging_setup.configure(settings.log_level)
            asyncio.run(_migrate(settings))
        elif args.command == "role":
            logging_setup.configure("WARNING")
            return asyncio.run(_grant(settings, args))
        elif args.command == "person":
            logging_setup.configure("WARNING")
            return asyncio.run(_person(settings, args))
    except CommunityFileError as error:
        print(f"shouwang: the community file is not valid:\n{error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


async def _migrate(settings: Settings) -> None:
    database = Database(settings.database_url)
    await database.migrate()
    await database.close()


async def _grant(settings: Settings, args: argparse.Namespace) -> int:
    community = load_community(settings.community_path)
    for grid in args.grid:
        if community.grid(grid) is None:
            print(
                f"shouwang: unknown grid {grid!r}; known: {', '.join(g.key for g in community.grids)}",
                file=sys.stderr,
            )
            return 2
    if args.role == accounts.GRID_WORKER and not args.grid:
        print("shouwang: a grid worker needs at least one --grid", file=sys.stderr)
        return 2
    database = Database(settings.database_url)
    await database.migrate()
    clock = SystemClock()
    # No delivery worker runs here: whatever this queues is sent by the running bot.
    engine = Engine(database, community, clock, MediaStore(settings.media_dir))
    try:
        user = await engine.run(
            lambda repos: accounts.grant_role(
                repos, args.channel, args.user, args.role, args.grid, clock.now(), args.name
            )
        )
    except DomainError as error:
        print(f"shouwang: {error.key}", file=sys.stderr)
        return 2
    finally:
        await database.close()
    print(f"granted {user.role} to {args.channel} user {args.user} (shouwang user #{user.id})")
    return 0


async def _person(settings: Settings, args: argparse.Namespace) -> int:
    community = load_community(settings.community_path)
    database = Database(settings.database_url)
    await database.migrate()
    clock = SystemClock()
    engine = Engine(database, community, clock, MediaStore(settings.media_dir))
    declarations = engine.registry.personal_data

    async def erase(repos: Repos) -> privacy.Erased:
        person = await privacy.find_person(repos, args.channel, args.user)
        erased = await privacy.erase(repos, community, declarations, person, clock.now())
        await repos.audit.record(
            clock.now(),
            rights.ERASE,
            via=VIA_CLI,
            subject_id=person.id,
            detail={"identities": erased.identities, "messages_dropped": erased.messages_dropped},
        )
        return erased

    async def export(repos: Repos) -> tuple[privacy.PersonalExport, str]:
        person = await privacy.find_person(repos, args.channel, args.user)
        found = await privacy.export(repos, declarations, person.id, clock.now())
        await repos.audit.record(
            clock.now(),
            rights.EXPORT,
            via=VIA_CLI,
            subject_id=person.id,
            detail={"rows": found.row_count, "sections": len(found.sections)},
        )
        return found, args.language or person.language or community.default_language

    try:
        if args.person_command == "erase":
            erased = await engine.run(erase)
            print(
                f"erased {args.channel} user {args.user} (shouwang user #{erased.user_id}): "
                f"{erased.identities} chat account(s) removed, {erased.messages_dropped} message(s) dropped"
            )
            return 0
        found, language = await engine.run(export)
    except DomainError as error:
        print(f"shouwang: {error.key}", file=sys.stderr)
        return 2
    finally:
        await database.close()
    translator = Translator.load(community.default_language, community.tz)
    readable = translator.text(language, privacy_views.readable(found, community), lambda payload: payload)
    text_path = args.out.with_suffix(".txt")
    _write_private(args.out, found.to_json())
    _write_private(text_path, readable.encode("utf-8"))
    print(f"wrote {args.out} and {text_path}: {found.row_count} records of shouwang user #{found.user_id}")
    return 0


def _write_private(path: Path, data: bytes) -> None:
    """Personal data: readable by the operator's account only, from the moment it exists."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file that existed keeps its mode otherwise
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


if __name__ == "__main__":
    sys.exit(main())
