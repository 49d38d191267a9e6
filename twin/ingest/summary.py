"""What an import did, counted per outcome (printed by the CLI)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Summary:
    """Counts per table of inserted / updated / unchanged / repaired / skipped rows."""

    source: str
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def add(self, table: str, outcome: str, n: int = 1) -> None:
        self.counts.setdefault(table, Counter())[outcome] += n

    def skip(self, table: str, reason: str, n: int = 1) -> None:
        self.add(table, "skipped", n)
        self.skipped_reasons[f"{table}: {reason}"] += n

    def total(self, table: str, outcome: str) -> int:
        return self.counts.get(table, Counter())[outcome]

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "tables": {t: dict(c) for t, c in self.counts.items()},
            "skipped_reasons": dict(self.skipped_reasons),
            "notes": list(self.notes),
        }


OUTCOMES = ("inserted", "updated", "unchanged", "repaired", "skipped", "gone", "deleted")
