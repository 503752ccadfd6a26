"""Object store: every Stripe object in memory, written through to SQLite when a
request commits, so the emulator's state survives a restart of its process."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Obj = dict[str, Any]

_SCHEMA = """
create table if not exists objects (id text primary key, seq integer not null, data text not null);
create table if not exists idempotency (key text primary key, data text not null);
"""


class Store:
    """Objects by id, in creation order; ``commit`` persists what changed since the last one."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self._objects: dict[str, Obj] = {}
        self._by_type: dict[str, dict[str, None]] = defaultdict(dict)  # ids, in creation order
        self._seq: dict[str, int] = {}
        self._next_seq = 0
        self._dirty: set[str] = set()
        # The last committed text of every object, so a failed request can be undone.
        self._committed: dict[str, str] = {}
        self.idempotency: dict[str, Obj] = {}
        self._dirty_keys: set[str] = set()
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                data_dir / "emulator.sqlite3", check_same_thread=False, timeout=30
            )
            self._db.execute("pragma journal_mode=wal")
            self._db.execute("pragma synchronous=normal")
            self._db.executescript(_SCHEMA)
            self._load(self._db)

    def _load(self, db: sqlite3.Connection) -> None:
        for object_id, seq, data in db.execute("select id, seq, data from objects order by seq"):
            obj = self._objects[object_id] = json.loads(data)
            self._committed[object_id] = data
            self._by_type[obj["object"]][object_id] = None
            self._seq[object_id] = seq
            self._next_seq = max(self._next_seq, seq + 1)
        for key, data in db.execute("select key, data from idempotency"):
            self.idempotency[key] = json.loads(data)

    def add(self, obj: Obj) -> Obj:
        self._objects[obj["id"]] = obj
        self._by_type[obj["object"]][obj["id"]] = None
        self._seq[obj["id"]] = self._next_seq
        self._next_seq += 1
        self._dirty.add(obj["id"])
        return obj

    def get(self, object_id: str) -> Obj | None:
        return self._objects.get(object_id)

    def touch(self, obj: Obj) -> Obj:
        """Mark a mutated object for the next commit."""
        self._dirty.add(obj["id"])
        return obj

    def replace(self, obj: Obj) -> None:
        """Swap an object in place, keeping its position (used for deletion tombstones)."""
        self._objects[obj["id"]] = obj
        self._dirty.add(obj["id"])

    def remove(self, object_id: str) -> None:
        obj = self._objects.pop(object_id, None)
        if obj is not None:
            self._by_type[obj["object"]].pop(object_id, None)
        self._seq.pop(object_id, None)
        self._dirty.add(object_id)

    def select(self, object_type: str, where: Callable[[Obj], bool] | None = None) -> list[Obj]:
        """Live objects of one type, newest first (Stripe's list order)."""
        candidates = (self._objects[object_id] for object_id in self._by_type[object_type])
        found = [
            obj for obj in candidates if not obj.get("deleted") and (where is None or where(obj))
        ]
        found.sort(key=lambda obj: (obj.get("created", 0), self._seq[obj["id"]]), reverse=True)
        return found

    def all(self) -> Iterator[Obj]:
        return iter(list(self._objects.values()))

    def remember(self, key: str, record: Obj) -> None:
        self.idempotency[key] = record
        self._dirty_keys.add(key)

    def rollback(self) -> None:
        """Undo what the current request changed, so a request Stripe refuses changes
        nothing. Handlers may change an object before they mark it, so every object is
        compared with its committed text: slow, but only refused requests pay for it."""
        changed = set(self._dirty) | {
            object_id
            for object_id, obj in self._objects.items()
            if self._committed.get(object_id) != json.dumps(obj)
        }
        for object_id in changed:
            committed = self._committed.get(object_id)
            current = self._objects.get(object_id)
            if current is not None:
                self._by_type[current["object"]].pop(object_id, None)
                self._objects.pop(object_id)
            if committed is None:
                self._seq.pop(object_id, None)
                continue
            obj = self._objects[object_id] = json.loads(committed)
            self._by_type[obj["object"]][object_id] = None
        self._dirty.clear()

    def commit(self) -> None:
        for object_id in self._dirty:
            obj = self._objects.get(object_id)
            if obj is None:
                self._committed.pop(object_id, None)
            else:
                self._committed[object_id] = json.dumps(obj)
        if self._db is None:
            self._dirty.clear()
            self._dirty_keys.clear()
            return
        with self._db_lock, self._db:
            for object_id in self._dirty:
                data = self._committed.get(object_id)
                if data is None:
                    self._db.execute("delete from objects where id = ?", (object_id,))
                else:
                    self._db.execute(
                        "insert or replace into objects (id, seq, data) values (?, ?, ?)",
                        (object_id, self._seq[object_id], data),
                    )
            for key in self._dirty_keys:
                self._db.execute(
                    "insert or replace into idempotency (key, data) values (?, ?)",
                    (key, json.dumps(self.idempotency[key])),
                )
        self._dirty.clear()
        self._dirty_keys.clear()

    def reset(self) -> None:
        self._objects.clear()
        self._by_type.clear()
        self._seq.clear()
        self._committed.clear()
        self.idempotency.clear()
        self._dirty.clear()
        self._dirty_keys.clear()
        if self._db is not None:
            with self._db_lock, self._db:
                self._db.execute("delete from objects")
                self._db.execute("delete from idempotency")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
