"""A first round trip through a session channel: stream a reply as appends, watch it live, read it back.

Runs against Ably when ABLY_API_KEY (and optionally ABLY_ENDPOINT) is set; otherwise it starts the
embedded dev server, so it works offline. Later releases replace this with the full agent demo.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import ExitStack

from ably.types.message import Message

from langchain_ably_transport import connect

CHANNEL = "conversations:quickstart"
REPLY = ["Durable ", "sessions ", "survive ", "reloads, ", "restarts ", "and ", "flaky ", "networks."]


async def run(key: str | None, endpoint: str | None) -> None:
    async with connect(key, endpoint, client_id="agent") as agent, connect(key, endpoint, client_id="viewer") as viewer:
        watching = viewer.channels.get(CHANNEL)
        shown: list[str] = []

        def render(message: Message) -> None:
            if message.name == "reply":
                shown.append(message.data)
                print(f"  live  action={message.action.name:<15} data={message.data!r}")

        await watching.subscribe(render)
        channel = agent.channels.get(CHANNEL)
        print(f"agent streams a reply into {CHANNEL!r}:")
        serial = (await channel.publish("reply", REPLY[0])).serials[0]
        appends = [asyncio.create_task(channel.append_message(Message(serial=serial, data=t))) for t in REPLY[1:]]
        await asyncio.gather(*appends)
        while "".join(shown) != "".join(REPLY):
            await asyncio.sleep(0.01)
        stored = await watching.get_message(serial)
        print(f"a late joiner reads the whole reply from history: {stored.data!r}")


def main() -> None:
    key, endpoint = os.environ.get("ABLY_API_KEY"), os.environ.get("ABLY_ENDPOINT")
    with ExitStack() as stack:
        if not key and not endpoint:
            from langchain_ably_transport.devserver import spawn

            server = stack.enter_context(spawn())
            key, endpoint = server.key, server.url
            print(f"no ABLY_API_KEY: using the embedded dev server at {endpoint}")
        asyncio.run(run(key, endpoint))


if __name__ == "__main__":
    main()
