"""The agent-protocol codec: LangChain's agent streaming protocol (what LangGraph's `useStream` speaks) on a session.

A second codec beside the UIMessage one, on the same session core and run lifecycle: `events` turns a graph's v3
event stream into protocol events, `batch` numbers them and publishes them per rollup window, and `commands`
reads the clients' commands and builds the answers. Pure but for `batch`, which writes through the publish
function it is given.
"""

from .batch import EventBatcher
from .commands import Command, Refusal, failure, read_command, refused, success
from .events import EventNormalizer, event, to_json

__all__ = ["Command", "EventBatcher", "EventNormalizer", "Refusal", "event", "failure", "read_command", "refused",
           "success", "to_json"]
