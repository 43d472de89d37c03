"""The `shouwang` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import sqlalchemy as sa
from pydantic import ValidationError

from bot import logging_setup
from bot.community_file import CommunityFileError, load_community
from bot.settings import Settings
from handlers.accounts import rules as accounts
from handlers.clock import SystemClock
from handlers.errors import DomainError
from handlers.media import MediaStore
from handlers.router import Engine
from storage.backup import BackupError, backup_sqlite
from storage.db import Database, normalise_url


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
    grant.add_argument("--channel", required=True, choices=["telegram", "wecom", "console"])
    grant.add_argument("--user", required=True, help="the platform user id, e.g. a Telegram numeric id")
    grant.add_argument("--role", required=True, choices=list(accounts.ROLES))
    grant.add_argument("--grid", action="append", default=[], help="grid key (grid workers; repeatable)")
    grant.add_argument("--name", help="display name until the person talks to the bot")
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
        elif args.command == "backup":
            return _backup(settings, args.path)
        elif args.command == "role":
            logging_setup.configure("WARNING")
            return asyncio.run(_grant(settings, args))
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


if __name__ == "__main__":
    sys.exit(main())
