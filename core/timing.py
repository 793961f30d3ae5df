"""Stage timings as data (returned with results so the GUI and CLI can show them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Timings:
    """Milliseconds per named stage, in the order the stages ran."""

    stages: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter_ns() - start) / 1e6)

    def add(self, name: str, ms: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + ms

    def merge(self, other: Timings) -> None:
        for name, ms in other.stages.items():
            self.add(name, ms)

    @property
    def total_ms(self) -> float:
        return sum(self.stages.values())
