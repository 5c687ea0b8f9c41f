"""`Invocation`: the HTTP wake-up body a client POSTs to the agent after publishing its input (§2.3).

In 0.8.0 it is exactly `{"inputEventId": str, "sessionName": str}`: the `event-id` of the trigger input and
the channel name. A run's id and invocation id are not part of it; the agent mints them. The Vercel
ChatTransport merges the application's own body keys with these two, the invocation keys winning, so extra
keys are expected and ignored here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInvocationError

INPUT_EVENT_ID = "inputEventId"
SESSION_NAME = "sessionName"


@dataclass(frozen=True)
class Invocation:
    """Which input woke the agent (`input_event_id`) and on which session (`session_name`, the channel name)."""

    input_event_id: str
    session_name: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes) -> Invocation:
        """Read a request body (parsed or raw JSON); other keys are ignored, both keys must be strings."""
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError as error:
                raise InvalidInvocationError(f"the invocation body is not JSON: {error}") from error
        if not isinstance(data, Mapping):
            raise InvalidInvocationError("the invocation body must be a JSON object")
        input_event_id = data.get(INPUT_EVENT_ID)
        session_name = data.get(SESSION_NAME)
        if not isinstance(input_event_id, str) or not isinstance(session_name, str):
            raise InvalidInvocationError(
                f"the invocation body needs string {INPUT_EVENT_ID!r} and {SESSION_NAME!r} keys "
                f"(got {sorted(str(k) for k in data)})"
            )
        return cls(input_event_id=input_event_id, session_name=session_name)

    def to_json(self) -> dict[str, str]:
        return {INPUT_EVENT_ID: self.input_event_id, SESSION_NAME: self.session_name}
