"""One object of a kind per `AblyRealtime` (a pacer, an agent instance, a continuity), made on first use and
forgotten with the client."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_registries = itertools.count()


class PerClient(Generic[T]):
    """`registry.of(client)`: the client's object, made by `make(client)` the first time it is asked for.

    The object is kept on the client itself, under an attribute of this registry's own, so that the two are freed
    together. (In a `WeakKeyDictionary`, an object that refers back to its client, as a pacer reading the client's
    rate does, kept the client and all it holds alive for good: every connection a pool ever closed.)
    """

    def __init__(self, make: Callable[[Any], T]) -> None:
        self._make = make
        self._attribute = f"_langchain_ably_transport_{next(_registries)}"

    def of(self, client: Any) -> T:
        made: T | None = getattr(client, self._attribute, None)
        if made is None:
            made = self._make(client)
            setattr(client, self._attribute, made)
        return made
