"""One value shared by many readers, rebuilt at most once per ``max_age`` seconds."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Cached(Generic[T]):
    """``build()``'s value, rebuilt when older than ``max_age`` or marked :meth:`stale`."""

    def __init__(self, build: Callable[[], T], clock: Callable[[], float], max_age: float) -> None:
        self._build = build
        self._clock = clock
        self._max_age = max_age
        self._value: T | None = None
        self._at = -math.inf

    def stale(self) -> None:
        self._at = -math.inf

    def get(self) -> T:
        now = self._clock()
        if self._value is None or now - self._at >= self._max_age:
            self._value = self._build()
            self._at = now
        return self._value
