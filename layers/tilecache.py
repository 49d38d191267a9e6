"""An in-process LRU cache of encoded tiles, bounded by bytes.

Keys carry the versions of the tables the tile's layers read, so a write (which bumps
a table's version) makes every older entry unreachable; :meth:`TileCache.evict_table`
also drops them at once so they stop taking room. A budget of 0 disables the cache.

Plain Python: no web framework here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

from layers.versions import Versions

ENTRY_OVERHEAD = 256
"""Approximate bytes of bookkeeping per entry (key tuple, dict slot)."""


class TileKey(NamedTuple):
    layers: tuple[str, ...]
    z: int
    x: int
    y: int
    versions: Versions


class TileCache:
    """Thread-safe LRU of ``TileKey → bytes`` within ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self._data: OrderedDict[TileKey, bytes] = OrderedDict()
        self._by_table: dict[str, set[TileKey]] = {}
        self._lock = threading.Lock()
        self.size = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @classmethod
    def from_mb(cls, mb: float) -> TileCache:
        return cls(int(mb * 1024 * 1024))

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: TileKey) -> bytes | None:
        if not self.enabled:
            return None
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: TileKey, value: bytes) -> None:
        cost = len(value) + ENTRY_OVERHEAD
        if not self.enabled or cost > self.max_bytes // 4:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.size -= len(old) + ENTRY_OVERHEAD
            self._data[key] = value
            self.size += cost
            for table, _ in key.versions:
                self._by_table.setdefault(table, set()).add(key)
            while self.size > self.max_bytes and self._data:
                oldest = next(iter(self._data))
                self._remove(oldest)
                self.evictions += 1

    def _remove(self, key: TileKey) -> None:
        value = self._data.pop(key, None)
        if value is None:
            return
        self.size -= len(value) + ENTRY_OVERHEAD
        for table, _ in key.versions:
            keys = self._by_table.get(table)
            if keys is not None:
                keys.discard(key)

    def evict_table(self, table: str, version: int | None = None) -> int:
        """Drop entries built from ``table`` at a version older than ``version``
        (all of them when None); returns how many were dropped."""
        with self._lock:
            keys = self._by_table.get(table)
            if not keys:
                return 0
            stale = [
                k for k in keys
                if version is None or any(t == table and v < version for t, v in k.versions)
            ]
            for k in stale:
                self._remove(k)
            return len(stale)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._by_table.clear()
            self.size = 0

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self._data), "bytes": self.size, "max_bytes": self.max_bytes,
            "hits": self.hits, "misses": self.misses, "evictions": self.evictions,
        }
