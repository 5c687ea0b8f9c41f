"""One object of a kind per `AblyRealtime` (a pacer, an agent instance, a continuity), made on first use and
forgotten with the client."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PerClient(Generic[T]):
    """`registry.of(client)`: the client's object, made by `make(client)` the first time it is asked for."""

    def __init__(self, make: Callable[[Any], T]) -> None:
        self._make = make
        self._made: weakref.WeakKeyDictionary[Any, T] = weakref.WeakKeyDictionary()

    def of(self, client: Any) -> T:
        made = self._made.get(client)
        if made is None:
            made = self._made[client] = self._make(client)
        return made
