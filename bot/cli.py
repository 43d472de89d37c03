"""The `shouwang` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from bot import logging_setup
from bot.community_file import CommunityFileError, load_community
from bot.settings import Settings
from handlers.accounts import rules as accounts
from handlers.clock import SystemClock
from handlers.errors import DomainError
from handlers.media import MediaStore
from handlers.router import Engine
from storage.db import Database


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
        elif args.command == "role":
            logging_setup.configure("WARNING")
            return asyncio.run(_grant(settings, args))
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
