"""Rich progress bars for long jobs (imports, demo build, benchmarks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class Reporter(Protocol):
    def task(self, description: str, total: float | None = None) -> int: ...
    def advance(self, task: int, n: float = 1) -> None: ...
    def done(self, task: int) -> None: ...


class NullReporter:
    """For library use and tests: reports nothing."""

    def task(self, description: str, total: float | None = None) -> int:
        return 0

    def advance(self, task: int, n: float = 1) -> None:
        pass

    def done(self, task: int) -> None:
        pass


class RichReporter:
    def __init__(self, progress: Progress) -> None:
        self._p = progress

    def task(self, description: str, total: float | None = None) -> int:
        return int(self._p.add_task(description, total=total))

    def advance(self, task: int, n: float = 1) -> None:
        self._p.advance(TaskID(task), n)

    def done(self, task: int) -> None:
        tid = TaskID(task)
        t = next(x for x in self._p.tasks if x.id == tid)
        self._p.update(tid, completed=t.total if t.total is not None else 1, total=t.total or 1)


@contextmanager
def rich_progress(console: Console | None = None) -> Iterator[RichReporter]:
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as p:
        yield RichReporter(p)
