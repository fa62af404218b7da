"""Signed checkpoints of the audit chain on SQLite and PostgreSQL: an intact log verifies, and each tampering is
detected: a row deleted in the middle, a payload edited, the tail cut after a checkpoint (with or without the
checkpoint rows), the whole table replaced by a self-consistent forged chain; checkpoints signed by another key
are refused; the key file is created private and a missing one is a clear error."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest
from sqlalchemy import delete, insert, select, update

from pilothouse.audit.chain import GENESIS, append_event, event_hash
from pilothouse.audit.checkpoints import AuditSetup, Checkpoint, CheckpointFile, stored_checkpoints, write_checkpoint
from pilothouse.audit.signing import AuditKeyError, load_or_create_signer, load_public_key, load_signer
from pilothouse.audit.verification import AuditReport, verify_log
from pilothouse.store.engine import Store
from pilothouse.store.tables import audit_checkpoints, audit_events


@pytest.fixture
def setup(tmp_path: Path) -> AuditSetup:
    return AuditSetup.open(tmp_path / "keys" / "signing-key.pem", tmp_path / "keys" / "audit-checkpoints.jsonl")


def fill(store: Store, n: int, *, start: int = 0) -> None:
    for i in range(start, start + n):
        with store.begin() as conn:
            append_event(conn, actor="key_admin", action="key.create", target=f"key-{i}", details={"i": i})


def checkpoint(store: Store, setup: AuditSetup) -> Checkpoint:
    written = write_checkpoint(store, setup.signer, setup.file)
    assert written is not None
    return written


def verify(store: Store, setup: AuditSetup) -> AuditReport:
    with store.connect() as conn:
        return verify_log(conn, setup.trusted, setup.file)


def test_an_intact_log_with_checkpoints_verifies(store: Store, setup: AuditSetup) -> None:
    assert verify(store, setup).ok  # empty: nothing to check
    fill(store, 5)
    first = checkpoint(store, setup)
    fill(store, 5, start=5)
    second = checkpoint(store, setup)
    fill(store, 2, start=10)  # newer than the newest checkpoint
    report = verify(store, setup)
    assert report.ok, report.problems
    assert (report.checked, report.checkpoints) == (12, 2)
    assert report.latest == second and report.to_dict()["unsigned_events"] == 2
    assert (first.event_count, first.last_seq, second.last_seq) == (5, 5, 10)
    with store.connect() as conn:
        assert stored_checkpoints(conn) == [first, second]
    in_file, bad = setup.file.read()
    assert in_file == [first, second] and bad == []


def test_only_if_moved_skips_an_unchanged_head(store: Store, setup: AuditSetup) -> None:
    fill(store, 3)
    assert write_checkpoint(store, setup.signer, setup.file, only_if_moved=True) is not None
    assert write_checkpoint(store, setup.signer, setup.file, only_if_moved=True) is None
    fill(store, 1, start=3)
    moved = write_checkpoint(store, setup.signer, setup.file, only_if_moved=True)
    assert moved is not None and moved.last_seq == 4


def test_a_deleted_middle_row_is_detected(store: Store, setup: AuditSetup) -> None:
    fill(store, 10)
    checkpoint(store, setup)
    with store.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq == 4))
    report = verify(store, setup)
    assert not report.ok
    assert report.broken is not None and report.broken.seq == 4 and "missing" in report.broken.reason


def test_an_edited_payload_is_detected(store: Store, setup: AuditSetup) -> None:
    fill(store, 10)
    checkpoint(store, setup)
    with store.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 7).values(details={"i": 70}))
    report = verify(store, setup)
    assert report.broken is not None and report.broken.seq == 7 and "altered" in report.broken.reason


def test_a_cut_tail_is_detected(store: Store, setup: AuditSetup) -> None:
    """Deleting the newest events leaves a valid shorter chain; the checkpoint still names the lost head."""
    fill(store, 10)
    checkpoint(store, setup)
    with store.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq > 7))
    report = verify(store, setup)
    assert report.checked == 7  # the chain itself holds
    assert report.broken is not None and report.broken.seq == 8
    assert "the log ends at event 7" in report.broken.reason and "newest events were deleted" in report.broken.reason


def test_a_cut_tail_with_its_checkpoint_rows_deleted_is_detected_by_the_file(store: Store, setup: AuditSetup) -> None:
    fill(store, 10)
    checkpoint(store, setup)
    with store.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq > 7))
        conn.execute(delete(audit_checkpoints))
    report = verify(store, setup)
    reasons = " | ".join(p.reason for p in report.problems)
    assert not report.ok
    assert "not in the database" in reasons and "newest events were deleted" in reasons
    with store.connect() as conn:  # without the file, the table alone cannot tell
        assert verify_log(conn, setup.trusted, None).ok


def _forge_chain(store: Store, n: int) -> None:
    """Replace every event with a self-consistent chain of `n` invented ones (hashes recomputed)."""
    with store.begin() as conn:
        conn.execute(delete(audit_events))
        prev = GENESIS
        for seq in range(1, n + 1):
            ts = 1_700_000_000.0 + seq
            details = {"forged": True}
            digest = event_hash(prev, seq, ts, None, "system", "project.create", f"p{seq}", details)
            conn.execute(
                insert(audit_events).values(
                    seq=seq,
                    ts=ts,
                    project_id=None,
                    actor="system",
                    action="project.create",
                    target=f"p{seq}",
                    details=details,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest


def test_a_replaced_table_is_detected(store: Store, setup: AuditSetup) -> None:
    fill(store, 6)
    checkpoint(store, setup)
    _forge_chain(store, 6)  # same length, every hash recomputed: the chain alone verifies
    with store.connect() as conn:
        from pilothouse.audit.chain import verify_chain

        assert verify_chain(conn) == (6, None)
    report = verify(store, setup)
    assert report.broken is not None and report.broken.seq == 6
    assert "rewritten or replaced" in report.broken.reason


def test_a_replaced_table_and_checkpoints_are_detected(store: Store, setup: AuditSetup, tmp_path: Path) -> None:
    """The forger also empties the checkpoints table and signs a checkpoint of the forgery with their own key."""
    fill(store, 6)
    checkpoint(store, setup)
    _forge_chain(store, 9)
    with store.begin() as conn:
        conn.execute(delete(audit_checkpoints))
    mallory = load_or_create_signer(tmp_path / "mallory" / "key.pem")
    write_checkpoint(store, mallory, CheckpointFile(tmp_path / "mallory" / "log.jsonl"))
    report = verify(store, setup)
    reasons = [p.reason for p in report.problems]
    assert any("not in the database" in r for r in reasons)  # the file's checkpoint has no row
    assert any("not a trusted key" in r for r in reasons)  # mallory's checkpoint
    assert any("rewritten or replaced" in r for r in reasons)  # the file's head is not the forged event 6


def test_a_checkpoint_signed_by_another_key_is_refused(store: Store, setup: AuditSetup, tmp_path: Path) -> None:
    fill(store, 3)
    other = load_or_create_signer(tmp_path / "other.pem")
    forged = write_checkpoint(store, other, CheckpointFile(tmp_path / "other.jsonl"))
    assert forged is not None
    report = verify(store, setup)
    assert report.broken is not None and report.broken.seq == 3
    assert f"signed by key {other.key_id}, which is not a trusted key" in report.broken.reason
    # trusted once its public key is listed (a rotated-out key)
    rotated = AuditSetup.open(setup.signer.path, setup.file.path, [tmp_path / "other.pem"])
    assert verify(store, rotated).ok


def test_an_edited_checkpoint_fails_its_signature(store: Store, setup: AuditSetup) -> None:
    fill(store, 4)
    cp = checkpoint(store, setup)
    with store.begin() as conn:  # claim fewer events, to hide the newest ones
        conn.execute(update(audit_checkpoints).where(audit_checkpoints.c.id == cp.id).values(last_seq=2, event_count=2))
    reasons = [p.reason for p in verify(store, setup).problems]
    assert any("signature does not match" in r for r in reasons)


def test_an_unreadable_line_of_the_file_is_a_warning(store: Store, setup: AuditSetup) -> None:
    fill(store, 2)
    checkpoint(store, setup)
    with setup.file.path.open("ab") as fh:
        fh.write(b"not json\n")
    report = verify(store, setup)
    assert report.ok and report.warnings == [f"{setup.file.path}:2 is not a checkpoint (JSONDecodeError)"]


def test_the_key_file_is_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "signing-key.pem"
    created = load_or_create_signer(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = load_or_create_signer(path)
    assert again.key_id == created.key_id
    assert load_public_key(path) == created.public  # the public key of a private key file
    public = tmp_path / "public.pem"
    public.write_text(created.public_pem())
    assert load_public_key(public) == created.public


def test_a_missing_or_wrong_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyError, match=r"no audit signing key at .*nowhere\.pem"):
        load_signer(tmp_path / "nowhere.pem")
    with pytest.raises(AuditKeyError, match="no audit signing key at"):
        load_public_key(tmp_path / "nowhere.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(AuditKeyError, match="not an unencrypted PEM private key"):
        load_signer(garbage)


def test_file_lines_round_trip(setup: AuditSetup, store: Store) -> None:
    fill(store, 1)
    cp = checkpoint(store, setup)
    line = setup.file.path.read_bytes().splitlines()[0]
    assert Checkpoint.from_dict(orjson.loads(line)) == cp
    with store.connect() as conn:
        assert conn.execute(select(audit_checkpoints.c.signature)).scalar_one() == cp.signature
