"""Flood control and deterministic fault injection for the Bot API emulator."""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAULT_KINDS", "FaultInjector", "FaultPlan", "FloodController", "FloodLimits"]

#: Fault kinds: an HTTP error instead of the answer, or the connection is held and then dropped
#: ("timeout": the request is never executed; "timeout_after": it is executed, the answer is lost).
FAULT_KINDS = ("429", "500", "502", "timeout", "timeout_after")

#: Methods that count against flood limits (everything that puts or changes a message in a chat).
FLOOD_METHODS = frozenset(
    {
        "sendMessage",
        "sendDocument",
        "sendPhoto",
        "sendLocation",
        "editMessageText",
        "editMessageReplyMarkup",
        "editMessageCaption",
    }
)


@dataclass(frozen=True)
class FloodLimits:
    """Telegram-like send limits; None disables one limit."""

    global_per_second: int | None = 30
    per_chat_per_second: int | None = 1
    per_group_per_minute: int | None = 20
    paid_per_second: int | None = 1000  # sends with allow_paid_broadcast (0.1 Star each), outside the 30/s

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FloodLimits:
        """Build from a JSON object with any of the three field names."""
        known = {"global_per_second", "per_chat_per_second", "per_group_per_minute", "paid_per_second"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown flood limit fields: {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, int | None]:
        """JSON-friendly form."""
        return {
            "global_per_second": self.global_per_second,
            "per_chat_per_second": self.per_chat_per_second,
            "per_group_per_minute": self.per_group_per_minute,
            "paid_per_second": self.paid_per_second,
        }


class FloodController:
    """Sliding-window counters that decide whether a send is allowed or gets ``retry_after``."""

    def __init__(self, limits: FloodLimits, clock: Callable[[], float] = time.monotonic) -> None:
        """Start with empty windows."""
        self.limits = limits
        self._clock = clock
        self._global: deque[float] = deque()
        self._paid: deque[float] = deque()  # paid broadcasts: their own global window
        self._per_chat: dict[int, deque[float]] = {}
        self._per_group: dict[int, deque[float]] = {}

    @staticmethod
    def _wait(window: deque[float], limit: int | None, span: float, now: float) -> float | None:
        if limit is None:
            return None
        while window and window[0] <= now - span:
            window.popleft()
        if len(window) < limit:
            return None
        return window[0] + span - now

    def check(self, chat_id: int | None, *, is_group: bool, paid: bool = False) -> int | None:
        """Return None and count the send when allowed, else the seconds to wait (>= 1); a `paid` broadcast
        counts against `paid_per_second` instead of the global 30 a second (per-chat limits still apply)."""
        now = self._clock()
        waits: list[float] = []
        checks: list[tuple[deque[float], int | None, float]] = [
            (self._paid, self.limits.paid_per_second, 1.0)
            if paid
            else (self._global, self.limits.global_per_second, 1.0)
        ]
        if chat_id is not None:
            checks.append((self._per_chat.setdefault(chat_id, deque()), self.limits.per_chat_per_second, 1.0))
            if is_group:
                checks.append(
                    (self._per_group.setdefault(chat_id, deque()), self.limits.per_group_per_minute, 60.0)
                )
        for window, limit, span in checks:
            wait = self._wait(window, limit, span, now)
            if wait is not None:
                waits.append(wait)
        if waits:
            return max(1, math.ceil(max(waits)))
        for window, _limit, _span in checks:
            window.append(now)
        return None


@dataclass
class FaultPlan:
    """Seeded fault rates per Bot API method (case-insensitive, "*" = any other method).

    ``rates={"sendMessage": {"429": 0.1, "500": 0.05, "502": 0.05, "timeout": 0.02}}``;
    ``script={"sendMessage": ["429", None, "timeout"]}`` fixes the outcome of the first calls
    before the random rates take over. "timeout" holds the request ``hold_seconds`` and then drops
    the connection without executing it; "timeout_after" executes it first (the answer is lost).
    """

    seed: int = 0
    rates: dict[str, dict[str, float]] = field(default_factory=dict)
    script: dict[str, list[str | None]] = field(default_factory=dict)
    hold_seconds: float = 3.0
    retry_after: int = 1

    def __post_init__(self) -> None:
        """Validate kinds and probabilities."""
        for method, kinds in self.rates.items():
            unknown = set(kinds) - set(FAULT_KINDS)
            if unknown:
                raise ValueError(f"{method}: unknown fault kinds {sorted(unknown)}; use {FAULT_KINDS}")
            if any(p < 0 for p in kinds.values()) or sum(kinds.values()) > 1.0 + 1e-9:
                raise ValueError(f"{method}: fault rates must be >= 0 and sum to at most 1")
        for method, outcomes in self.script.items():
            unknown = {o for o in outcomes if o is not None} - set(FAULT_KINDS)
            if unknown:
                raise ValueError(f"{method}: unknown fault kinds {sorted(unknown)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultPlan:
        """Build from a JSON object with the dataclass field names."""
        known = {"seed", "rates", "script", "hold_seconds", "retry_after"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault plan fields: {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "seed": self.seed,
            "rates": self.rates,
            "script": self.script,
            "hold_seconds": self.hold_seconds,
            "retry_after": self.retry_after,
        }

    def outcomes(self, method: str, count: int) -> list[str | None]:
        """The first ``count`` outcomes this plan gives ``method`` (same as the server will)."""
        injector = FaultInjector(self)
        return [injector.decide(method) for _ in range(count)]


class FaultInjector:
    """Applies a FaultPlan: one independent seeded stream of outcomes per method."""

    def __init__(self, plan: FaultPlan) -> None:
        """Start every method's stream at its first call."""
        self.plan = plan
        self._rates = {k.lower(): v for k, v in plan.rates.items()}
        self._script = {k.lower(): v for k, v in plan.script.items()}
        self._calls: dict[str, int] = {}
        self._rngs: dict[str, random.Random] = {}

    def decide(self, method: str) -> str | None:
        """Outcome for the next call of ``method``: a fault kind or None (serve normally)."""
        key = method.lower()
        index = self._calls.get(key, 0)
        self._calls[key] = index + 1
        script = self._script.get(key, self._script.get("*"))
        rates = self._rates.get(key, self._rates.get("*"))
        rng = self._rngs.get(key)
        if rng is None:
            rng = self._rngs[key] = random.Random(f"{self.plan.seed}:{key}")
        draw = rng.random()  # drawn on every call so scripted prefixes do not shift the stream
        if script is not None and index < len(script):
            return script[index]
        if not rates:
            return None
        cumulative = 0.0
        for kind in FAULT_KINDS:
            cumulative += rates.get(kind, 0.0)
            if draw < cumulative:
                return kind
        return None
