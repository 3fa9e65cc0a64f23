"""The durable outbox's cost against the in-memory one (the baseline), and its recovery after a restart.

Puts N event-sized messages (and N/4 40 KB snapshots), then drains them as
the publisher does (next_unsent, mark_sent, ack in batches of 20 in
flight), for MemoryOutbox and DurableOutbox (SQLite WAL, synchronous=FULL)
in a temporary directory on the state disk's filesystem (``--dir``). Then
reopens a durable outbox holding N messages and times it. One JSON line.

    .venv/bin/python bench/outbox.py [--messages 2000] [--dir /var/lib/camwatch]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.publish.durable import DurableOutbox  # noqa: E402
from agent.publish.outbox import MemoryOutbox, Outbox, OutMessage  # noqa: E402

EVENT = {
    "schema": "camwatch.event/1",
    "id": "0" * 32,
    "ward": "w",
    "camera": "cam-01",
    "ts": "2026-11-25T10:00:00.000Z",
    "type": "state_changed",
    "from": "online",
    "to": "offline",
    "problems": ["stalled"],
}
SNAPSHOT = b"\xff\xd8" + bytes(40_000)


def messages(n: int) -> list[OutMessage]:
    out = []
    for i in range(n):
        out.append(OutMessage("camwatch/w/cam-01/events", {**EVENT, "n": i}, "state", "cam-01", queued_at=0.0))
        if i % 4 == 0:
            out.append(OutMessage(f"camwatch/w/cam-01/snapshot/{i}", SNAPSHOT, "snapshot", "cam-01", queued_at=0.0))
    return out


def run(box: Outbox, batch: list[OutMessage]) -> dict[str, float]:
    t0 = time.perf_counter()
    for m in batch:
        box.put(m)
    t1 = time.perf_counter()
    mid, inflight = 0, list[int]()
    while (msg := box.next_unsent()) is not None or inflight:
        if msg is not None and len(inflight) < 20:
            mid += 1
            box.mark_sent(msg, mid)
            inflight.append(mid)
        else:
            for acked in inflight:
                box.ack(acked)
            inflight = []
    t2 = time.perf_counter()
    return {"put_per_s": round(len(batch) / (t1 - t0)), "drain_per_s": round(len(batch) / (t2 - t1))}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--dir", type=Path, default=None, help="where to put the database (default: a temp dir)")
    args = ap.parse_args()
    batch = messages(args.messages)
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        memory = run(MemoryOutbox(max_messages=10 * len(batch)), batch)
        durable_box = DurableOutbox(Path(d) / "bench.sqlite", max_messages=10 * len(batch))
        durable = run(durable_box, batch)
        durable_box.close()
        filler = DurableOutbox(Path(d) / "restart.sqlite", max_messages=10 * len(batch))
        for m in batch:
            filler.put(m)
        del filler  # as after kill -9
        t = time.perf_counter()
        again = DurableOutbox(Path(d) / "restart.sqlite", max_messages=10 * len(batch))
        reopen_s = time.perf_counter() - t
        first = again.next_unsent()
        assert first is not None, "the outbox lost what it held across the restart"
        recovered = again.recovered
        again.close()
    print(
        json.dumps(
            {
                "bench": "outbox",
                "messages": len(batch),
                "memory": memory,
                "durable": durable,
                "restart": {"recovered": recovered, "reopen_ms": round(reopen_s * 1000, 1), "first_late": first.late},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
