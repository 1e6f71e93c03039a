"""Alembic environment for the state store.

The agent runs migrations itself (``StateStore.open`` and ``ax-agent state upgrade``)
and hands this script an open connection. Developers creating a revision can also run
Alembic directly: ``alembic -c agent/migrations/alembic.ini -x url=sqlite:///dev.db
revision --autogenerate -m "what changed"``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from agent.state.dialect import DEFAULT_URL, create_state_engine
from agent.state.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url", DEFAULT_URL)
    engine = create_state_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
