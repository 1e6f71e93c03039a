"""The packaged migrations build exactly the schema the code declares, on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from agent.state import migrate, schema
from agent.state.errors import StateError
from agent.state.schema import metadata
from agent.state.store import StateStore


def _diff(store: StateStore) -> list[object]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_open_migrates_an_empty_database_to_head(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        assert store.revision() == migrate.head_revision() == "0011_mirror_changed_at"
        tables = set(inspect(store.engine).get_table_names())
    assert tables == set(metadata.tables) | {"alembic_version"}


def test_migrated_schema_equals_the_declared_metadata(store: StateStore) -> None:
    assert _diff(store) == []


def test_migrated_indexes_and_keys_follow_the_naming_convention(store: StateStore) -> None:
    inspector = inspect(store.engine)
    assert inspector.get_pk_constraint("responses")["name"] == "pk_responses"
    indexes = {ix["name"] for ix in inspector.get_indexes("cycles")}
    assert indexes == {"ix_cycles_job_started_at"}


def test_opening_again_is_a_no_op_and_keeps_data(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        store.set_cursor("files", "responses", "42")
    with StateStore.open(state_url) as store:
        assert store.get_cursor("files", "responses") == "42"
        assert store.revision() == migrate.head_revision()


def test_downgrade_to_base_then_upgrade_rebuilds_the_schema(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        migrate.downgrade(store.engine, "base")
        assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(store.engine)
        assert _diff(store) == []


def test_without_migrating_an_empty_database_is_refused_with_the_fix(state_url: str) -> None:
    with pytest.raises(StateError, match=r"revision none.*ax-agent state upgrade"):
        StateStore.open(state_url, migrate_schema=False)


def test_a_database_from_a_newer_agent_is_refused(state_url: str) -> None:
    with StateStore.open(state_url) as store, store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StateError, match=r"revision 9999.*upgrade ax-agent"):
        StateStore.open(state_url)


def test_an_unsupported_url_is_refused_clearly() -> None:
    with pytest.raises(StateError, match="not supported"):
        StateStore.open("mysql://root:pw@localhost/ax")


def test_an_unreachable_postgres_is_reported_without_its_password() -> None:
    url = "postgresql://ax:s3cret-pw@127.0.0.1:1/ax?connect_timeout=1"
    with pytest.raises(StateError, match="cannot use state database") as caught:
        StateStore.open(url)
    assert "s3cret-pw" not in str(caught.value)
    assert "***" in str(caught.value)


def test_a_missing_sqlite_folder_is_reported(tmp_path: object) -> None:
    with pytest.raises(StateError, match="does not exist"):
        StateStore.open(f"sqlite:///{tmp_path}/nowhere/state.db")


def test_revision_0010_moves_the_bulk_tables_triggers_on_sqlite_only(state_url: str) -> None:
    """Down to 0009, SQLite's bulk tables get their per-row triggers back; up again,
    they lose them. PostgreSQL keeps its per-statement triggers throughout."""

    def triggered(store: StateStore) -> set[str]:
        with store.engine.connect() as conn:
            if store.dialect == "sqlite":
                rows = conn.exec_driver_sql(
                    "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'"
                )
            else:
                rows = conn.exec_driver_sql(
                    "SELECT tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
                )
            return {name for (name,) in rows}

    bulk = {"crm_records", "responses", "written_values"}
    with StateStore.open(state_url) as store:
        assert bool(triggered(store) & bulk) == (store.dialect == "postgresql")
        migrate.downgrade(store.engine, "0009_written_settled")
        assert triggered(store) >= bulk
        migrate.upgrade(store.engine)
        assert bool(triggered(store) & bulk) == (store.dialect == "postgresql")


def test_revision_0011_gives_every_mirror_row_its_seen_at_as_changed_at(state_url: str) -> None:
    """Rows from before 0011 take the instant they were last read as the one they last
    changed; down to 0010 the column goes, and up again it comes back filled."""
    seen = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    with StateStore.open(state_url) as store:
        migrate.downgrade(store.engine, "0010_versions_by_statement")
        pg = store.dialect == "postgresql"
        with store.engine.begin() as conn:
            columns = {col["name"] for col in inspect(conn).get_columns("crm_records")}
            assert "changed_at" not in columns
            conn.execute(
                text(
                    "INSERT INTO crm_records (crm, object, record_id, payload, deleted, seen_at)"
                    f" VALUES ('files', 'account', 'A', {'CAST(:p AS json)' if pg else ':p'},"
                    " :d, :s)"
                ),
                {"p": "{}", "d": False, "s": seen if pg else "2024-05-01 09:30:00.000000"},
            )
        migrate.upgrade(store.engine)
        c = schema.crm_records.c
        with store.reading() as tx:
            row = tx.connection.execute(select(c.seen_at, c.changed_at)).one()
        assert row.changed_at == row.seen_at == seen
