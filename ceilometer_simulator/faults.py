"""Faults on demand: error statuses, slow answers, dropped connections, broken bodies."""

from __future__ import annotations

import dataclasses
import random
import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

ACTIONS = ("status", "drop", "truncate", "slow", "garbage")


@dataclasses.dataclass
class FaultRule:
    """One fault: which requests it hits (method + path regex) and what it does to them.

    ``times`` limits it to the next N matching requests; ``rate`` applies it to that share of
    them (at random); with neither, it hits every matching request. ``method`` ``"*"`` matches
    any method. The path is matched with ``re.search`` against the path without query string.
    """

    method: str = "*"
    path: str = ".*"
    action: str = "status"
    status: int = 503
    times: int | None = None
    rate: float | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}; expected one of {ACTIONS}")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        self._regex = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        """True when the rule's method and path regex match the request."""
        return (self.method in ("*", method.upper())) and self._regex.search(path) is not None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build from a JSON object with the dataclass's field names."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown FaultRule fields: {unknown}")
        return cls(**dict(data))

    def to_json(self) -> dict[str, Any]:
        """The rule as a JSON-ready dict."""
        return dataclasses.asdict(self)


class Faults:
    """The active fault rules; the first rule that matches and fires wins."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def add(self, rule: FaultRule) -> FaultRule:
        """Activate a rule; returns it."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        """A copy of the active rules (exhausted ``times`` rules are removed)."""
        with self._lock:
            return list(self._rules)

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any, consuming one of its ``times``."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path) or (rule.times is not None and rule.times <= 0):
                    continue
                if rule.rate is not None and self._rng.random() >= rule.rate:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                return rule
        return None
