"""Migration 0006 on SQLite and PostgreSQL: `traces.source` is added, old rows are filled in (scenario-test
traces `prompt_test`, every other `http`), and the downgrade removes it again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect, text

from pilothouse.store.engine import open_store
from pilothouse.store.migrate import alembic_config


def test_0006_fills_in_the_source_of_existing_traces(empty_database: str) -> None:
    engine = create_engine(empty_database)
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0005_inflight_calls")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (id, name, created_at) VALUES ('prj_1', 'default', 0)"))
        for trace_id, name, status in [
            ("t_chat", "chat", "ok"),
            ("t_embed", "embeddings", "error"),
            ("t_test", "prompt.test", "ok"),
            ("t_lost", "chat", "unknown_outcome"),
        ]:
            conn.execute(
                text(
                    "INSERT INTO traces (id, project_id, name, status, started_at, input_tokens, output_tokens, "
                    "cost_usd) VALUES (:id, 'prj_1', :name, :status, 0, 0, 0, 0)"
                ),
                {"id": trace_id, "name": name, "status": status},
            )
    engine.dispose()
    store = open_store(empty_database)
    try:
        with store.connect() as conn:
            sources: dict[str, str | None] = dict(conn.execute(text("SELECT id, source FROM traces")).all())
        assert sources == {"t_chat": "http", "t_embed": "http", "t_test": "prompt_test", "t_lost": "http"}
    finally:
        store.dispose()
    engine = create_engine(empty_database)
    try:
        command.downgrade(alembic_config(engine), "0005_inflight_calls")
        columns = {c["name"] for c in inspect(engine).get_columns("traces")}
        assert "source" not in columns and "prompt_version" in columns
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM traces")).scalar_one() == 4
    finally:
        engine.dispose()
