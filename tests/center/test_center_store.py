"""The center's store: compaction, dedup, migrations, retention, restart — on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from center.store import MIGRATIONS, EventRow, Store, StoreError, WriteBatch, redact_url
from center.timeline import FOREVER, Assertion

T0 = 1_764_000_000.0


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Open the test's store (as often as a test restarts it); every one is closed at the end."""
    opened: list[Store] = []

    def open_() -> Store:
        opened.append(Store(store_url))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


def heartbeat_batch(received: float, since: float, until: float) -> WriteBatch:
    b = WriteBatch.empty(received)
    b.camera("w1", "c1", "Cổng chợ", received)
    b.assertion("w1", "c1", Assertion(since, until, "online"))
    return b


def test_heartbeats_compact_to_one_row_and_survive_a_restart(open_store: Callable[[], Store]) -> None:
    store = open_store()
    for t in range(0, 3600, 30):
        store.write(heartbeat_batch(T0 + t, T0, T0 + t))
    store.write(heartbeat_batch(T0 + 10, T0, T0 + 10))  # a late one never shortens what is known
    store.close()
    again = open_store()
    assert again.assertions("w1", "c1", T0, T0 + 4000, 90) == [Assertion(T0, T0 + 3570, "online")]
    (cam,) = again.cameras()
    assert (cam.name, cam.first_seen, cam.last_seen) == ("Cổng chợ", T0, T0 + 3570)
    assert again.schema_version() == len(MIGRATIONS)


def test_events_are_stored_once_whatever_the_batches(open_store: Callable[[], Store]) -> None:
    store = open_store()
    ev = EventRow("e1", "w1", "c1", T0, "detection_started", False, "{}")
    b = WriteBatch.empty(T0)
    b.events += [ev, ev]
    assert store.write(b) == [True, False]
    b2 = WriteBatch.empty(T0 + 5)
    b2.events.append(EventRow("e1", "w1", "c1", T0, "detection_started", True, "{}"))  # replayed later
    assert store.write(b2) == [False]
    assert [e.id for e in store.events(ward="w1")] == ["e1"]


def test_last_will_is_forever_and_reads_back_as_infinity(open_store: Callable[[], Store]) -> None:
    store = open_store()
    b = WriteBatch.empty(T0)
    b.assertion("w1", "c1", Assertion(T0, FOREVER, "unknown"))
    store.write(b)
    (a,) = store.assertions("w1", "c1", T0 + 86400 * 30, T0 + 86400 * 31, 90)
    assert math.isinf(a.end) and a.state == "unknown"


def test_maintenance_and_retention(open_store: Callable[[], Store]) -> None:
    store = open_store()
    wid = store.add_maintenance(
        ward="w1", camera=None, start=T0, end=T0 + 3600, note="thay dây", created_by="admin", now=T0
    )
    with pytest.raises(ValueError, match="end after it starts"):
        store.add_maintenance(ward="w1", camera="c1", start=T0, end=T0, note="", created_by="admin", now=T0)
    assert [m.id for m in store.maintenance(T0 - 10, T0 + 10)] == [wid]
    store.write(heartbeat_batch(T0, T0, T0 + 60))
    b = WriteBatch.empty(T0)
    b.snapshots.append(("e9", "w1", "c1", b"\xff\xd8jpeg"))
    store.write(b)
    counts = store.prune(now=T0 + 10 * 86400, retention_days=30, snapshot_retention_days=7)
    assert counts["snapshots"] == 1 and counts["assertions"] == 0 and store.snapshot("e9") is None
    counts = store.prune(now=T0 + 31 * 86400, retention_days=30, snapshot_retention_days=7)
    assert counts["assertions"] == 1 and counts["maintenance"] == 1
    assert store.delete_maintenance(wid) is False


def test_a_newer_schema_is_refused(open_store: Callable[[], Store]) -> None:
    store = open_store()
    with store.transaction() as cur:
        cur.execute("INSERT INTO schema_version VALUES (99)")
    store.close()
    with pytest.raises(StoreError, match="schema 99, newer than this camwatch knows"):
        open_store()


def test_bad_urls_are_named_without_their_password(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="use sqlite:///PATH or postgresql://"):
        Store("mysql://root:Secret-1@db/x")
    with pytest.raises(StoreError) as err:
        Store("mysql://root:Secret-1@db/x")
    assert "Secret-1" not in str(err.value)
    with pytest.raises(StoreError, match="give a file"):
        Store("sqlite:///:memory:")
    assert redact_url("postgresql://cw:Pa55@db/center") == "postgresql://cw:***@db/center"


def test_an_older_schema_is_upgraded_in_place(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import center.store.database as module

    monkeypatch.setattr(module, "MIGRATIONS", MIGRATIONS[:1])  # the store as the first release left it
    old = Store(store_url)
    assert old.schema_version() == 1
    old.write(heartbeat_batch(T0, T0, T0 + 60))
    old.close()
    monkeypatch.undo()
    store = Store(store_url)  # this release: the later migrations applied, the data kept
    assert store.schema_version() == len(MIGRATIONS) > 1
    assert store.assertions("w1", "c1", T0, T0 + 100, 90) == [Assertion(T0, T0 + 60, "online")]
    store.close()


def test_an_alert_is_taken_on_by_the_first_operator_only_and_kept_after_it_ends(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    alert = store.fire_alert(("camera_offline", "w1", "c1"), T0, "stalled", T0 + 600)
    assert [a.id for a in store.open_alerts()] == [alert.id]
    taken, took = store.ack_alert(alert.id, "nam", "đã cử người ra xem", T0 + 700)
    assert took and taken is not None and (taken.acked_by, taken.acked) == ("nam", T0 + 700)
    again, took_again = store.ack_alert(alert.id, "lan", "tôi nữa", T0 + 800)
    assert not took_again and again is not None and (again.acked_by, again.ack_note) == ("nam", "đã cử người ra xem")
    assert store.ack_alert(999, "lan", "", T0 + 800) == (None, False)
    store.resolve_alert(alert.id, T0 + 900)
    assert store.open_alerts() == []
    (kept,) = open_store().alerts(since=T0)  # after a restart too: history
    assert (kept.resolved, kept.acked_by) == (T0 + 900, "nam")
