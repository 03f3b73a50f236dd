"""One throwaway database per test session on SQLite, MariaDB and PostgreSQL.

Every test using ``db_url`` runs once per backend and starts with an empty database (its tables
are dropped after each test). The servers are the ones this machine runs; ``scripts/setup.sh test``
starts them and creates the ``astara_test`` role. An unreachable server fails the tests, it
never skips them. Override the server
URLs with ASTARA_TEST_MYSQL_URL / ASTARA_TEST_POSTGRESQL_URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import URL, make_url

from astara.db.engine import dispose_all, get_engine

SERVERS = {
    "mysql": os.environ.get(
        "ASTARA_TEST_MYSQL_URL", "mysql+pymysql://astara_test:astara_test@127.0.0.1:3306/"
    ),
    "postgresql": os.environ.get(
        "ASTARA_TEST_POSTGRESQL_URL",
        "postgresql+psycopg://astara_test:astara_test@127.0.0.1:5432/postgres",
    ),
}
BACKENDS = ("sqlite", "mysql", "postgresql")


def _server_database(backend: str) -> Iterator[str]:
    admin_url = make_url(SERVERS[backend])
    name = f"astara_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as err:
        pytest.fail(
            f"{backend} server at {admin_url.render_as_string(hide_password=True)} is "
            f"unreachable ({str(err).splitlines()[0]}); run scripts/setup.sh test",
            pytrace=False,
        )
    url: URL = admin_url.set(database=name)
    if backend == "mysql":
        url = url.update_query_dict({"charset": "utf8mb4"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        dispose_all()
        drop = f"DROP DATABASE {name}" + (" WITH (FORCE)" if backend == "postgresql" else "")
        with admin.connect() as connection:
            connection.execute(text(drop))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def session_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    backend = request.param
    if backend == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "astara.db"
        yield f"sqlite:///{path}"
        dispose_all()
        return
    yield from _server_database(backend)


@pytest.fixture
def db_url(session_db_url: str) -> Iterator[str]:
    """An empty database on each backend; whatever the test creates is dropped after it."""
    yield session_db_url
    engine = get_engine(session_db_url)
    metadata = MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)
