"""LangChain's human-in-the-loop interrupts as the UIMessage tool-approval flow. Pure, no I/O.

`HumanInTheLoopMiddleware` (langchain 1.x) interrupts in one of two shapes, recognised here by the interrupt value
alone so the library never imports `langchain`:

- batched (the default): one `HITLRequest {action_requests: [{name, args, description}], review_configs}` per model
  turn, resumed with `{"decisions": [...]}`, one decision per action request, in order;
- per call: one `ToolApprovalRequest {type: "tool_approval", tool_call_id, name, args, description}` per gated tool
  call, resumed with one decision.

Each gated call is published as a `tool-approval-request` chunk on the tool part that streamed it, and a client's
`tool-approval-response` (`ApprovalDecision`, keyed by tool call id) becomes the decision. A batched request names
no tool call ids, so its action requests are matched to the pending tool calls of the last `AIMessage` in the
graph's state, in order, by name and arguments. The approval id is the interrupt id (`<interrupt id>:<index>` for
the actions of a batched request), so the same interrupt always publishes the same ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.types import Interrupt

from ..codec.chunks import Chunk, Input
from ..codec.langchain import ApprovalDecision, input_to_langchain, tool_approval_request_chunk

TOOL_APPROVAL = "tool_approval"


def approval_request_chunks(interrupt: Interrupt, messages: Sequence[BaseMessage]) -> list[Chunk] | None:
    """The `tool-approval-request` chunks that publish a HITL interrupt; None when the interrupt is not one, or a
    batched request's actions cannot all be matched to pending tool calls (publish it some other way)."""
    call_ids = _gated_calls(interrupt, messages)
    if call_ids is None:
        return None
    if _is_per_call(interrupt.value):
        return [tool_approval_request_chunk(interrupt.id, call_ids[0])]
    return [tool_approval_request_chunk(f"{interrupt.id}:{i}", call_id) for i, call_id in enumerate(call_ids)]


def approval_decisions(inputs: Iterable[Input]) -> dict[str, ApprovalDecision]:
    """The `tool-approval-response` inputs among `inputs`, by tool call id (a later answer wins)."""
    decisions: dict[str, ApprovalDecision] = {}
    for event in inputs:
        if event.get("kind") == "tool-approval-response":
            decision = input_to_langchain(event)
            if isinstance(decision, ApprovalDecision):
                decisions[decision.tool_call_id] = decision
    return decisions


def approval_resume(
    interrupt: Interrupt, messages: Sequence[BaseMessage], decisions: Mapping[str, ApprovalDecision]
) -> Any | None:
    """What resumes a HITL interrupt given the client's decisions; None when it is not a HITL interrupt or a call it
    gates has no decision (a batched request resumes only with a decision for every action)."""
    call_ids = _gated_calls(interrupt, messages)
    if call_ids is None or any(call_id not in decisions for call_id in call_ids):
        return None
    if _is_per_call(interrupt.value):
        return decisions[call_ids[0]].to_hitl_decision()
    return {"decisions": [decisions[call_id].to_hitl_decision() for call_id in call_ids]}


def _is_per_call(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("type") == TOOL_APPROVAL and bool(value.get("tool_call_id"))


def _is_batched(value: Any) -> bool:
    return (isinstance(value, Mapping) and isinstance(value.get("action_requests"), list)
            and isinstance(value.get("review_configs"), list))


def gates_tool_calls(interrupt: Interrupt) -> bool:
    """Whether `interrupt` is a human-in-the-loop review of tool calls, which only `tool-approval-response`s
    answer: an answer by id could edit the calls' arguments or stand in for their results."""
    return _is_per_call(interrupt.value) or _is_batched(interrupt.value)


def _gated_calls(interrupt: Interrupt, messages: Sequence[BaseMessage]) -> list[str] | None:
    """The tool call ids a HITL interrupt gates, in its order; None when it is not one or they cannot be found."""
    value = interrupt.value
    if _is_per_call(value):
        return [str(value["tool_call_id"])]
    if not _is_batched(value):
        return None
    return _match_actions(value["action_requests"], _pending_tool_calls(messages))


def _pending_tool_calls(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """The tool calls of the last `AIMessage` that have no `ToolMessage` answering them yet."""
    answered: set[str] = set()
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            answered.add(message.tool_call_id)
        elif isinstance(message, AIMessage):
            return [call for call in message.tool_calls if call.get("id") and call["id"] not in answered]
    return []


def _match_actions(actions: list[Any], calls: list[dict[str, Any]]) -> list[str] | None:
    """Each action request's tool call: the first unclaimed call with its name and arguments, else its name."""
    unclaimed = list(calls)
    matched: list[str] = []
    for action in actions:
        if not isinstance(action, Mapping):
            return None
        same_name = [c for c in unclaimed if c["name"] == action.get("name")]
        exact = [c for c in same_name if c.get("args") == action.get("args")]
        candidates = exact or same_name
        if not candidates:
            return None
        unclaimed.remove(candidates[0])
        matched.append(str(candidates[0]["id"]))
    return matched
