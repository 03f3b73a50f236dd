"""``astara-dbsync``: create or upgrade the orchestrator database, show its revision."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from alembic.util import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from astara.core.settings import ConfigError
from astara.db import migration
from astara.db.engine import database_url
from astara.orchestrator.settings import load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astara-dbsync", description="Manage the schema of the astara orchestrator database."
    )
    parser.add_argument(
        "--config-file",
        action="append",
        metavar="FILE",
        help="orchestrator.ini (repeatable; default: $ASTARA_CONFIG, /etc/astara/orchestrator.ini)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    upgrade = commands.add_parser("upgrade", help="upgrade the schema (to head by default)")
    upgrade.add_argument("revision", nargs="?", default="head")
    commands.add_parser("current", help="print the database's schema revision")
    commands.add_parser("history", help="list every schema revision this code knows")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "history":
        for rev in migration.history():
            print(f"{rev.down_revision or '<base>'} -> {rev.revision}: {rev.doc}")
        return 0
    try:
        url = database_url(load_config(args.config_file))
        shown = make_url(url).render_as_string(hide_password=True)
    except ConfigError as err:
        print(f"astara-dbsync: {err}", file=sys.stderr)
        return 2
    except ArgumentError:
        print("astara-dbsync: option [database] connection is not a database URL", file=sys.stderr)
        return 2
    try:
        if args.command == "upgrade":
            migration.upgrade(url, args.revision)
            print(f"{shown}: at revision {migration.current(url)}")
        else:
            print(migration.current(url) or "none (empty database: run 'astara-dbsync upgrade')")
    except CommandError as err:
        print(f"astara-dbsync: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        print(
            f"astara-dbsync: database {shown}: driver not installed ({err}); use "
            "mysql+pymysql:// or postgresql+psycopg://",
            file=sys.stderr,
        )
        return 2
    except SQLAlchemyError as err:
        first = str(getattr(err, "orig", None) or err).splitlines()[0]
        print(f"astara-dbsync: database {shown}: {first}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
