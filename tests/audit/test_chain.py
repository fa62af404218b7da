"""The hash-chained audit log on SQLite and PostgreSQL: verification, tamper detection, concurrent appends."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import delete, select, text, update

from pilothouse.audit.chain import (
    GENESIS,
    AuditEvent,
    BrokenLink,
    append_event,
    event_hash,
    list_events,
    verify_chain,
)
from pilothouse.store.engine import Store
from pilothouse.store.tables import audit_events


def append_many(store: Store, n: int, *, actor: str = "key_admin") -> list[AuditEvent]:
    events = []
    for i in range(n):
        with store.begin() as conn:
            events.append(
                append_event(
                    conn,
                    actor=actor,
                    action="key.create" if i % 2 else "project.create",
                    target=f"target-{i}",
                    project_id="proj_a" if i % 3 else None,
                    details={"i": i, "name": f"n{i}", "nested": {"ok": True, "list": [1, 2.5, None]}},
                )
            )
    return events


def verify(store: Store) -> tuple[int, BrokenLink | None]:
    with store.connect() as conn:
        return verify_chain(conn)


def test_empty_chain_verifies(store: Store) -> None:
    assert verify(store) == (0, None)


def test_twenty_events_verify(store: Store) -> None:
    events = append_many(store, 20)
    assert [e.seq for e in events] == list(range(1, 21))
    assert events[0].prev_hash == GENESIS
    for prev, ev in itertools.pairwise(events):
        assert ev.prev_hash == prev.hash
    assert verify(store) == (20, None)
    with store.connect() as conn:
        assert verify_chain(conn, batch=3) == (20, None)  # batch boundaries do not matter
        stored = list_events(conn, limit=1000)
        assert stored == events
        assert [e.seq for e in list_events(conn, after_seq=15)] == [16, 17, 18, 19, 20]
        assert [e.seq for e in list_events(conn, limit=2)] == [1, 2]
        assert {e.project_id for e in list_events(conn, project_id="proj_a")} == {"proj_a"}
    assert events[4].to_dict()["details"] == {"i": 4, "name": "n4", "nested": {"ok": True, "list": [1, 2.5, None]}}


def test_altered_actor_is_detected(store: Store) -> None:
    append_many(store, 20)
    with store.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 7"))
    checked, broken = verify(store)
    assert checked == 6
    assert broken is not None and broken.seq == 7 and "altered" in broken.reason


def test_altered_details_are_detected(store: Store) -> None:
    append_many(store, 20)
    with store.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 13).values(details={"i": 12, "name": "n12"}))
    assert verify(store) == (12, BrokenLink(13, "contents were altered (hash mismatch)"))


def test_altered_timestamp_is_detected(store: Store) -> None:
    append_many(store, 5)
    with store.begin() as conn:
        conn.execute(text("UPDATE audit_events SET ts = ts - 3600 WHERE seq = 1"))
    checked, broken = verify(store)
    assert checked == 0 and broken is not None and broken.seq == 1 and "altered" in broken.reason


def test_rehashed_row_breaks_the_next_link(store: Store) -> None:
    """An attacker who also recomputes the altered row's hash is caught by the following row."""
    events = append_many(store, 10)
    ev = events[4]
    forged = event_hash(ev.prev_hash, ev.seq, ev.ts, ev.project_id, "mallory", ev.action, ev.target, ev.details)
    with store.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 5).values(actor="mallory", hash=forged))
    checked, broken = verify(store)
    assert checked == 5
    assert broken is not None and broken.seq == 6 and "prev_hash" in broken.reason


def test_deleted_middle_row_is_named(store: Store) -> None:
    append_many(store, 20)
    with store.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq == 10))
    checked, broken = verify(store)
    assert checked == 9
    assert broken == BrokenLink(10, "event 10 is missing (next is 11)")


def test_deleted_first_row_is_named(store: Store) -> None:
    append_many(store, 3)
    with store.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 1"))
    assert verify(store) == (0, BrokenLink(1, "event 1 is missing (next is 2)"))


def test_append_joins_the_callers_transaction(store: Store) -> None:
    append_many(store, 2)
    with pytest.raises(RuntimeError), store.begin() as conn:
        append_event(conn, actor="a", action="key.revoke")
        raise RuntimeError("the action failed")
    with store.connect() as conn:
        assert [e.seq for e in list_events(conn)] == [1, 2]
    with store.begin() as conn:
        assert append_event(conn, actor="a", action="key.revoke").seq == 3
    assert verify(store) == (3, None)


@pytest.mark.parametrize(("threads", "per_thread"), [(8, 12)])
def test_concurrent_appends_never_fork_the_chain(store: Store, threads: int, per_thread: int) -> None:
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            try:
                with store.begin() as conn:  # each append in its own transaction
                    append_event(conn, actor=f"worker-{n}", action="test.append", details={"i": i})
            except BaseException as exc:
                with lock:
                    errors.append(exc)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert errors == []
    total = threads * per_thread
    with store.connect() as conn:
        seqs = list(conn.execute(select(audit_events.c.seq).order_by(audit_events.c.seq)).scalars())
        prevs = list(conn.execute(select(audit_events.c.prev_hash)).scalars())
    assert seqs == list(range(1, total + 1))
    assert len(set(prevs)) == total, "two events share a predecessor: the chain forked"
    assert verify(store) == (total, None)
