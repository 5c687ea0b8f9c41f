"""The official LangGraph checkpointer conformance suite, against AblySaver on the dev server."""

from __future__ import annotations

from langgraph.checkpoint.conformance import checkpointer_test, validate

from langchain_ably_transport import AblySaver, connect


async def test_all_capabilities_pass(server):
    @checkpointer_test(name="AblySaver")
    async def ably_saver():
        async with connect(server.key, server.url) as client:
            yield AblySaver(client)

    report = await validate(ably_saver)
    report.print_report()
    assert report.passed_all(), report.to_dict()
    assert len(report.results) == 8
