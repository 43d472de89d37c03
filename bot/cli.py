"""The `shouwang` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from bot import logging_setup
from bot.community_file import CommunityFileError, load_community
from bot.i18n import Translator
from bot.settings import Settings
from handlers.accounts import linking, roles
from handlers.accounts import rules as accounts
from handlers.clock import SystemClock
from handlers.community import LANGUAGES, Community
from handlers.errors import DomainError
from handlers.media import MediaStore
from handlers.privacy import rights
from handlers.privacy import rules as privacy
from handlers.privacy import views as privacy_views
from handlers.router import Engine
from storage.audit import VIA_CLI, AuditEntry
from storage.backup import BackupError, backup_sqlite
from storage.db import Database, normalise_url
from storage.models import User
from storage.repositories import Repos

T = TypeVar("T")


CHANNELS = ["telegram", "wecom", "console"]

# Channels where a user id is also the private chat and the bot may write first: on WeChat
# Work the UserID is the member's chat with the app. (On Telegram the person must press Start.)
PRIVATE_CHAT_IS_USER_ID = frozenset({"wecom"})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shouwang", description="守望 Shouwang community-safety bot")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot on the configured channels (the simulator when none is)")
    simulate = commands.add_parser("simulate", help="the bot in this terminal, with a demo community")
    simulate.add_argument(
        "--script", type=Path, help="run these lines non-interactively and print the transcript"
    )
    commands.add_parser("migrate", help="bring the database schema up to date")
    backup = commands.add_parser(
        "backup", help="copy the SQLite database to PATH, also while the bot runs (PostgreSQL: pg_dump)"
    )
    backup.add_argument("path", type=Path, help="the file to write (replaced if it exists)")
    role = commands.add_parser("role", help="manage roles")
    role_commands = role.add_subparsers(dest="role_command", required=True)
    grant = role_commands.add_parser("grant", help="give a platform user a role (the first police/admin)")
    grant.add_argument("--channel", required=True, choices=CHANNELS)
    grant.add_argument("--user", required=True, help="the platform user id, e.g. a Telegram numeric id")
    grant.add_argument("--role", required=True, choices=list(accounts.ROLES))
    grant.add_argument("--grid", action="append", default=[], help="grid key (grid workers; repeatable)")
    grant.add_argument("--name", help="display name until the person talks to the bot")
    revoke = role_commands.add_parser("revoke", help="take a staff or volunteer role back (resident again)")
    revoke.add_argument("--channel", required=True, choices=CHANNELS)
    revoke.add_argument("--user", required=True, help="the platform user id")
    audit = commands.add_parser("audit", help="print the audit log of privileged actions, newest first")
    audit.add_argument("--since", type=date.fromisoformat, help="only entries from this day on (YYYY-MM-DD)")
    audit.add_argument("--action", help="only this action, e.g. role.grant")
    audit.add_argument("--limit", type=int, default=1000, help="at most this many entries (1000)")
    link = commands.add_parser("link", help="linked accounts")
    link_commands = link.add_subparsers(dest="link_command", required=True)
    undo = link_commands.add_parser("undo", help="split an account that a link joined back off")
    undo.add_argument("--channel", required=True, choices=CHANNELS)
    undo.add_argument("--user", required=True, help="the platform user id of the account to split off")
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
    # Before anything is created: whatever this process writes (the database and its -wal/-shm,
    # photos, exports, backups) is its account's alone, whatever umask the service manager set.
    # The files that matter also get explicit modes (storage/files.py); this covers the rest.
    previous = os.umask(0o077)
    try:
        return _main(args)
    finally:
        os.umask(previous)  # for callers in the same process (the tests)


def _main(args: argparse.Namespace) -> int:
    try:
        settings = Settings()
    except ValidationError as error:
        # One line per bad setting, named as it is set: SHOUWANG_<FIELD>.
        for problem in error.errors():
            name = "".join(f"SHOUWANG_{str(part).upper()}: " for part in problem["loc"][:1])
            print(f"shouwang: {name}{problem['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return 2
    try:
        if args.command == "run":
            if settings.telegram_token or settings.wecom_enabled:
                logging_setup.configure(settings.log_level, secrets=logging_setup.secrets_of(settings))
                from bot.app import StartupError, run

                try:
                    asyncio.run(run(settings))
                except StartupError as error:
                    print(f"shouwang: {error}", file=sys.stderr)
                    return error.exit_code
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
            logging_setup.configure(settings.log_level, secrets=logging_setup.secrets_of(settings))
            asyncio.run(_migrate(settings))
        elif args.command == "backup":
            return _backup(settings, args.path)
        elif args.command == "role":
            logging_setup.configure("WARNING")
            if args.role_command == "revoke":
                return asyncio.run(_revoke(settings, args))
            return asyncio.run(_grant(settings, args))
        elif args.command == "audit":
            logging_setup.configure("WARNING")
            return asyncio.run(_audit(settings, args))
        elif args.command == "link":
            logging_setup.configure("WARNING")
            return asyncio.run(_undo_link(settings, args))
        elif args.command == "person":
            logging_setup.configure("WARNING")
            return asyncio.run(_person(settings, args))
    except CommunityFileError as error:
        print(f"shouwang: the community file is not valid:\n{error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except DBAPIError as error:
        # The database named by the settings does not answer (or refuses the login).
        cause = error.orig if error.orig is not None else error
        print(
            f"shouwang: SHOUWANG_DATABASE_URL: cannot open the database: {_first_line(cause)}",
            file=sys.stderr,
        )
        return 1
    except OSError as error:
        # A folder that cannot be created, a script file that is not there...
        print(f"shouwang: {_first_line(error)}", file=sys.stderr)
        return 1
    return 0


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


async def _migrate(settings: Settings) -> None:
    database = Database(settings.database_url)
    try:
        await database.migrate()
    finally:
        await database.close()


def _backup(settings: Settings, target: Path) -> int:
    url = sa.make_url(normalise_url(settings.database_url))
    if url.get_backend_name() != "sqlite" or not url.database:
        print(
            "shouwang: backup copies SQLite databases; for PostgreSQL use pg_dump (README, Operations)",
            file=sys.stderr,
        )
        return 2
    try:
        size = backup_sqlite(Path(url.database), target)
    except (BackupError, OSError) as error:
        print(f"shouwang: backup failed: {error}", file=sys.stderr)
        return 1
    print(f"backed up {url.database} to {target} ({size / 1_000_000:.1f} MB)")
    return 0


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
    clock = SystemClock()

    async def grant(repos: Repos) -> accounts.RoleChange:
        change = await accounts.grant_from_command_line(
            repos,
            args.channel,
            args.user,
            args.role,
            args.grid,
            clock.now(),
            args.name,
            chat_id=args.user if args.channel in PRIVATE_CHAT_IS_USER_ID else None,
        )
        await roles.announce(repos, community, change, clock.now())
        return change

    change = await _run(settings, community, clock, grant)
    if change is None:
        return 2
    user = change.person
    print(f"granted {user.role} to {args.channel} user {args.user} (shouwang user #{user.id})")
    return 0


async def _run(
    settings: Settings, community: Community, clock: SystemClock, fn: Callable[[Repos], Awaitable[T]]
) -> T | None:
    """One unit of work on the configured database; None (and the reason on stderr) if refused."""
    database = Database(settings.database_url)
    await database.migrate()
    # No delivery worker runs here: whatever this queues is sent by the running bot.
    engine = Engine(database, community, clock, MediaStore(settings.media_dir))
    try:
        return await engine.run(fn)
    except DomainError as error:
        print(f"shouwang: {_REFUSALS.get(error.key, error.key)}", file=sys.stderr)
        return None
    finally:
        await database.close()


# What the operator is told when the rules refuse (the chat's catalogue speaks to chat users).
_REFUSALS = {
    "error.no_such_person": "nobody with that id has talked to the bot or been granted a role",
    "roles.nothing_to_revoke": "that person holds no role to revoke (they are a resident)",
    "link.not_linked": "that account was not joined to another by a link (or the link was undone)",
    "link.already_undone": "that link was undone already",
}


async def _revoke(settings: Settings, args: argparse.Namespace) -> int:
    community = load_community(settings.community_path)
    clock = SystemClock()

    async def revoke(repos: Repos) -> accounts.RoleChange:
        person = await accounts.person_on(repos, args.channel, args.user)
        change = await accounts.revoke_role(repos, None, VIA_CLI, person.id, clock.now())
        await roles.announce(repos, community, change, clock.now())
        return change

    change = await _run(settings, community, clock, revoke)
    if change is None:
        return 2
    print(
        f"revoked {change.previous} from {args.channel} user {args.user} "
        f"(shouwang user #{change.person.id}, now a resident)"
    )
    return 0


async def _undo_link(settings: Settings, args: argparse.Namespace) -> int:
    community = load_community(settings.community_path)
    clock = SystemClock()

    async def undo(repos: Repos) -> accounts.Unlinked:
        undone = await accounts.undo_link_of(repos, args.channel, args.user, clock.now())
        await linking.tell_unlinked(repos, community, undone, clock.now())
        return undone

    undone = await _run(settings, community, clock, undo)
    if undone is None:
        return 2
    print(
        f"split {args.channel} user {args.user} off shouwang user #{undone.link.user_id} "
        f"into shouwang user #{undone.split.id} (role {undone.split.role})"
    )
    return 0


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    community = load_community(settings.community_path)
    clock = SystemClock()
    since = datetime.combine(args.since, time(0), community.tz) if args.since else None

    async def read(repos: Repos) -> accounts.AuditPage:
        return await accounts.audit_page(repos, None, since=since, action=args.action, limit=args.limit)

    page = await _run(settings, community, clock, read)
    if page is None:
        return 2
    for entry in page.entries:
        print(audit_line(entry, page.people, community.tz))
    if not page.entries:
        print("no entries", file=sys.stderr)
    return 0


def audit_line(entry: AuditEntry, people: Mapping[int, User], tz: tzinfo) -> str:
    """One entry on one line: local time, action, who, where from, on whom, on what, details."""

    def who(user_id: int | None) -> str:
        if user_id is None:
            return "-"
        person = people.get(user_id)
        return f"{person.display_name} (#{user_id})" if person else f"#{user_id} (gone)"

    at = entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    actor = who(entry.actor_id) if entry.actor_id is not None else entry.via
    detail = json.dumps(entry.detail, ensure_ascii=False, sort_keys=True)
    return (
        f"{at}  {entry.action}  by {actor} via {entry.via}  subject {who(entry.subject_id)}"
        f"  target {entry.target or '-'}  {detail}"
    )


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
