"""A channel: ordered serials, durable publish, mutable messages, presence, attach/replay and fan-out.

Every method runs to completion without awaiting, so storing an event and handing it to every
attachment happen in one step of the event loop: an attach (with its replay) and a publish can never
interleave, which is what gives resumed subscribers no gap and no duplicate.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .auth import Identity
from .config import ServerConfig
from .presence import PresenceSet
from .protocol import (
    AblyError,
    Action,
    Flag,
    MessageAction,
    Outbound,
    PresenceAction,
    bad_request,
    invalid_channel,
    message_size,
    normalise_data,
    not_found,
    not_permitted,
    too_large,
    without_none,
)
from .store import Store

MAX_REWIND = 100
_REWIND = re.compile(r"^(\d+)([sm]?)$")
_MUTATIONS = {int(MessageAction.UPDATE), int(MessageAction.DELETE), int(MessageAction.APPEND)}


class Recipient(Protocol):
    """A realtime connection as a channel sees it."""

    connection_id: str
    echo: bool

    def send(self, outbound: Outbound) -> None: ...


@dataclass(frozen=True)
class Publisher:
    """Who is publishing: the identity, and for realtime, the connection and frame (for message ids)."""

    identity: Identity
    connection_id: str | None = None
    msg_serial: int | None = None

    def frame_id(self) -> str:
        if self.connection_id is None or self.msg_serial is None:
            return f"rest-{secrets.token_hex(6)}:0"
        return f"{self.connection_id}:{self.msg_serial}"


@dataclass(eq=False)
class Attachment:
    """One connection attached to one channel, and which pre-attach messages it has been shown whole."""

    recipient: Recipient
    modes: int
    attach_serial: str
    shown_whole: set[str] = field(default_factory=set)

    def has_seen(self, serial: str) -> bool:
        return serial.partition(":")[0] > self.attach_serial or serial in self.shown_whole


def now_ms() -> int:
    return int(time.time() * 1000)


def validate_channel_name(name: Any) -> str:
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 2048
        or name[0] in ":["
        or any(ord(ch) < 32 for ch in name)
    ):
        raise invalid_channel(name)
    return name


class SerialClock:
    """Mints channelSerials `<14-digit ms>-<3-digit counter>@<series>` that sort in publish order."""

    def __init__(self, series: str, last: str | None) -> None:
        self._series = series
        self._ms, self._counter = (int(last[:14]), int(last[15:18])) if last else (0, -1)

    def next(self) -> str:
        ms = now_ms()
        if ms > self._ms:
            self._ms, self._counter = ms, 0
        else:
            self._counter += 1
            if self._counter > 999:
                self._ms, self._counter = self._ms + 1, 0
        return f"{self._ms:014d}-{self._counter:03d}@{self._series}"

    def current(self) -> str:
        """The attach point of a channel: its newest serial, or a fresh one while it is empty."""
        if self._counter < 0:
            return self.next()
        return f"{self._ms:014d}-{self._counter:03d}@{self._series}"


class Channel:
    def __init__(self, name: str, store: Store, config: ServerConfig) -> None:
        self.name = name
        self._store = store
        self._config = config
        self._clock = SerialClock(store.series, store.last_channel_serial(name))
        self.attachments: dict[str, Attachment] = {}
        self.presence = PresenceSet(config.limits.max_presence_members)

    # --- attach / detach ---

    def attach(
        self, recipient: Recipient, identity: Identity, frame: dict[str, Any], *, continuous: bool = False
    ) -> Attachment:
        """Attach `recipient`; sends ATTACHED, then any replay or rewind, then the presence SYNC.

        `continuous`: `recipient` is attached already and was sent every message since over the socket that asks
        again (ably-python re-attaches every channel after an in-place re-authentication). It is resumed where that
        socket is, with nothing replayed: its `channelSerial` may predate a message already on its way to it, which
        a replay would deliver twice."""
        modes = self._granted_modes(identity, frame)
        params = frame.get("params") if isinstance(frame.get("params"), dict) else None
        resume_from = frame.get("channelSerial")
        flags = modes
        error = None
        replay: list[dict[str, Any]] = []
        existing = self.attachments.get(recipient.connection_id) if continuous else None
        attachment = Attachment(recipient, modes, self._clock.current())
        if existing is not None:
            existing.modes = modes
            attachment, resume_from = existing, self._clock.current()
            flags |= Flag.RESUMED
        elif isinstance(resume_from, str) and resume_from:
            horizon = self._store.horizon(self.name)
            if horizon is not None and resume_from <= horizon:
                error = AblyError(80016, 400, "Channel continuity lost: history before the resume point expired")
            else:
                flags |= Flag.RESUMED
                replay = self._replay_after(resume_from, attachment)
        elif params and params.get("rewind"):
            replay = self._rewind(str(params["rewind"]), attachment)
        if len(self.presence):
            flags |= Flag.HAS_PRESENCE
        attached: dict[str, Any] = {
            "action": int(Action.ATTACHED),
            "channel": self.name,
            "flags": flags,
            "channelSerial": resume_from if flags & Flag.RESUMED else attachment.attach_serial,
            "params": params,
        }
        if error:
            attached["error"] = error.to_wire()
        recipient.send(Outbound(attached))
        if modes & Flag.SUBSCRIBE:
            for replayed in replay:
                recipient.send(Outbound(replayed))
        if len(self.presence):
            self._send_sync(recipient)
        self.attachments[recipient.connection_id] = attachment
        return attachment

    def _granted_modes(self, identity: Identity, frame: dict[str, Any]) -> int:
        requested = int(frame.get("flags") or 0) & Flag.ALL_MODES or Flag.DEFAULT_MODES
        granted = requested & identity.modes(self.name)
        if not granted:
            raise not_permitted(f"attach to channel {self.name!r}")
        return granted

    def detach(self, connection_id: str) -> None:
        self.attachments.pop(connection_id, None)
        self.leave_all(connection_id)

    def forget(self, connection_id: str) -> None:
        """The connection's socket dropped: stop delivering; it re-attaches with a serial on resume."""
        self.attachments.pop(connection_id, None)

    def _send_sync(self, recipient: Recipient) -> None:
        frame = {
            "action": int(Action.SYNC),
            "channel": self.name,
            "channelSerial": f"{secrets.token_hex(4)}:",
            "presence": self.presence.members(),
        }
        recipient.send(Outbound(frame))

    # --- replay ---

    def _replay_after(self, serial: str, attachment: Attachment) -> list[dict[str, Any]]:
        """Frames after `serial`, with each message shown once, whole and current, where it was created."""
        frames = []
        for event in self._store.events_after(self.name, serial):
            frame = {
                "action": event.action,
                "channel": self.name,
                "channelSerial": event.channel_serial,
                **event.body,
            }
            if event.action == Action.MESSAGE:
                shown = self._current_versions(event.body["messages"], attachment)
                if not shown:
                    continue
                frame["messages"] = shown
            frames.append(frame)
        return frames

    def _current_versions(self, messages: list[dict[str, Any]], attachment: Attachment) -> list[dict[str, Any]]:
        shown = []
        for message in messages:
            serial = message["serial"]
            if serial in attachment.shown_whole:
                continue
            current = self._store.message(self.name, serial)
            if current is None:
                continue
            if message.get("action", 0) != MessageAction.CREATE and attachment.has_seen(serial):
                shown.append(message)
                continue
            attachment.shown_whole.add(serial)
            shown.append(current)
        return shown

    def _rewind(self, rewind: str, attachment: Attachment) -> list[dict[str, Any]]:
        match = _REWIND.match(rewind.strip())
        if not match:
            raise bad_request(f"Invalid rewind parameter {rewind!r}: use a count (10) or a time (30s, 2m)")
        amount, unit = int(match[1]), match[2]
        if unit:
            since = now_ms() - amount * (60_000 if unit == "m" else 1000)
            latest = self._store.latest_messages(self.name, MAX_REWIND, since)
        else:
            latest = self._store.latest_messages(self.name, min(amount, MAX_REWIND), None)
        frames = []
        for channel_serial, message in latest:
            attachment.shown_whole.add(message["serial"])
            frames.append(self._message_frame(channel_serial, message["timestamp"], [message], {}))
        return frames

    # --- publish ---

    def publish(self, raw_messages: list[Any], publisher: Publisher) -> list[str]:
        """Store and fan out new messages; returns their serials (a duplicate id returns the original's)."""
        self._require(publisher.identity, "publish")
        creates = [self._create_fields(raw, publisher) for raw in raw_messages]
        serials: list[str | None] = []
        fresh = []
        for message in creates:
            original = self._duplicate_of(message)
            serials.append(original["serial"] if original else None)
            if original is None:
                fresh.append(message)
        if fresh:
            published = iter(self._store_creates(fresh, publisher))
            serials = [serial if serial is not None else next(published) for serial in serials]
        return [serial for serial in serials if serial is not None]

    def _create_fields(self, raw: Any, publisher: Publisher) -> dict[str, Any]:
        message = _message_fields(raw)
        if raw.get("id") is not None:
            if not isinstance(raw["id"], str):
                raise bad_request("Message id must be a string")
            message["id"] = raw["id"]
        client_id = publisher.identity.acts_as(raw.get("clientId"))
        if client_id is not None:
            message["clientId"] = client_id
        limit = self._config.limits.max_message_size
        size = message_size(message)
        if size > limit:
            raise too_large(size, limit)
        return message

    def _duplicate_of(self, message: dict[str, Any]) -> dict[str, Any] | None:
        message_id = message.get("id")
        return self._store.messages_with_id(self.name, message_id) if message_id else None

    def _store_creates(self, messages: list[dict[str, Any]], publisher: Publisher) -> list[str]:
        channel_serial = self._clock.next()
        timestamp = now_ms()
        frame_id = publisher.frame_id()
        stamped = []
        for index, message in enumerate(messages):
            serial = f"{channel_serial}:{index:03d}"
            entry = {"id": f"{frame_id}:{index}", **message, "timestamp": timestamp, "serial": serial,
                     "action": int(MessageAction.CREATE), "version": {"serial": serial, "timestamp": timestamp}}
            if publisher.connection_id:
                entry["connectionId"] = publisher.connection_id
            stamped.append(entry)
        envelope = {"id": frame_id, "connectionId": publisher.connection_id, "timestamp": timestamp}
        with self._store.transaction():
            self._store.append_event(
                self.name, channel_serial, Action.MESSAGE, timestamp, {**envelope, "messages": stamped}
            )
            for entry in stamped:
                self._store.insert_message(self.name, entry, channel_serial)
        outbound = Outbound(self._message_frame(channel_serial, timestamp, stamped, envelope))
        for attachment in list(self.attachments.values()):
            if self._delivers_to(attachment, publisher):
                attachment.recipient.send(outbound)
        return [entry["serial"] for entry in stamped]

    def _message_frame(
        self, channel_serial: str, timestamp: int, messages: list[dict[str, Any]], envelope: dict[str, Any]
    ) -> dict[str, Any]:
        frame = {"action": int(Action.MESSAGE), "channel": self.name, "channelSerial": channel_serial,
                 "timestamp": timestamp, "messages": messages}
        frame.update({k: v for k, v in envelope.items() if v is not None})
        return frame

    @staticmethod
    def _delivers_to(attachment: Attachment, publisher: Publisher) -> bool:
        if not attachment.modes & Flag.SUBSCRIBE:
            return False
        recipient = attachment.recipient
        return recipient.echo or recipient.connection_id != publisher.connection_id

    # --- mutable messages ---

    def mutate(self, raw: Any, publisher: Publisher) -> str:
        """Apply an update, delete or append to a stored message; returns the version serial."""
        if not isinstance(raw, dict):
            raise bad_request("A message must be an object")
        action = raw.get("action")
        target = raw.get("serial")
        if action not in _MUTATIONS or not isinstance(target, str) or not target:
            raise bad_request("An update, delete or append needs action 1, 2 or 5 and the target serial")
        if not self._config.allows_mutations(self.name):
            raise AblyError(
                93002, 400,
                f"Updates, deletes and appends are not enabled on channel {self.name!r}: enable the "
                "'message annotations, updates, deletes and appends' rule for its namespace",
            )
        original = self._store.message(self.name, target)
        if original is None:
            raise not_found(f"message {target!r} on channel {self.name!r}")
        self._require_mutation_right(publisher.identity, action, original)
        change = _message_fields(raw)
        aggregate, delivered = self._apply(action, original, change, publisher)
        return self._store_mutation(action, aggregate, delivered, publisher)

    def _require_mutation_right(self, identity: Identity, action: int, original: dict[str, Any]) -> None:
        verb = "delete" if action == MessageAction.DELETE else "update"
        if identity.permits(self.name, f"message-{verb}-any"):
            return
        own = identity.concrete_client_id is not None and identity.concrete_client_id == original.get("clientId")
        if own and identity.permits(self.name, f"message-{verb}-own"):
            return
        raise not_permitted(f"message-{verb} on channel {self.name!r}")

    def _apply(
        self, action: int, original: dict[str, Any], change: dict[str, Any], publisher: Publisher
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The new aggregate and what subscribers who have seen the message receive."""
        version = self._version_fields(change.pop("version", None), publisher)
        if action == MessageAction.APPEND:
            data = _concatenate(original.get("data"), change.get("data"))
            carried = {k: change.get(k, original.get(k)) for k in ("name", "extras")}
            aggregate = {**original, **without_none(carried), "data": data,
                         "action": int(MessageAction.UPDATE), "version": version}
            delta = {k: aggregate[k] for k in ("serial", "timestamp", "name", "clientId", "extras") if k in aggregate}
            delta.update({"action": int(MessageAction.APPEND), "version": version})
            delta.update(without_none({"data": change.get("data"), "encoding": change.get("encoding")}))
            aggregate = without_none(aggregate)
        else:
            aggregate = {**original, **change, "action": action, "version": version}
            delta = aggregate
        limit = self._config.limits.max_message_size
        size = message_size(aggregate)
        if size > limit:
            raise too_large(size, limit)
        return aggregate, delta

    def _version_fields(self, operation: Any, publisher: Publisher) -> dict[str, Any]:
        version: dict[str, Any] = {"serial": None, "timestamp": now_ms()}
        if isinstance(operation, dict):
            version.update({k: operation[k] for k in ("description", "metadata") if operation.get(k) is not None})
            client_id = publisher.identity.acts_as(operation.get("clientId"))
        else:
            client_id = publisher.identity.concrete_client_id
        if client_id:
            version["clientId"] = client_id
        return version

    def _store_mutation(
        self, action: int, aggregate: dict[str, Any], delivered: dict[str, Any], publisher: Publisher
    ) -> str:
        channel_serial = self._clock.next()
        version_serial = f"{channel_serial}:000"
        aggregate["version"]["serial"] = version_serial
        timestamp = aggregate["version"]["timestamp"]
        envelope = {"connectionId": publisher.connection_id, "timestamp": timestamp}
        with self._store.transaction():
            self._store.append_event(
                self.name, channel_serial, Action.MESSAGE, timestamp, {**envelope, "messages": [delivered]}
            )
            self._store.replace_message(self.name, aggregate)
            if action != MessageAction.APPEND:
                self._store.add_version(self.name, aggregate)
        as_seen = Outbound(self._message_frame(channel_serial, timestamp, [delivered], envelope))
        as_whole = Outbound(self._message_frame(channel_serial, timestamp, [aggregate], envelope))
        serial = aggregate["serial"]
        for attachment in list(self.attachments.values()):
            if not self._delivers_to(attachment, publisher):
                continue
            if attachment.has_seen(serial):
                attachment.recipient.send(as_seen)
            else:
                attachment.shown_whole.add(serial)
                attachment.recipient.send(as_whole)
        return version_serial

    # --- presence ---

    def update_presence(self, raw_members: list[Any], publisher: Publisher) -> None:
        self._require(publisher.identity, "presence")
        if publisher.connection_id is None:
            raise bad_request("Presence is entered over a realtime connection")
        for index, raw in enumerate(raw_members):
            member = self._presence_fields(raw, publisher, index)
            if isinstance(raw, dict) and self.presence.is_current(member, raw.get("id")):
                continue  # an SDK re-entering after a resume (RTP17g) with the id it holds: not news
            self._store_presence(self.presence.apply(member))

    def _presence_fields(self, raw: Any, publisher: Publisher, index: int) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise bad_request("A presence message must be an object")
        action = raw.get("action")
        if action not in (PresenceAction.ENTER, PresenceAction.UPDATE, PresenceAction.LEAVE):
            raise bad_request(f"Presence action must be enter (2), leave (3) or update (4), not {action!r}")
        client_id = publisher.identity.acts_as(raw.get("clientId"))
        if client_id is None:
            raise AblyError(91000, 400, "Unable to enter presence channel (no clientId)")
        member = {
            "id": f"{publisher.frame_id()}:{index}",
            "action": int(action),
            "clientId": client_id,
            "connectionId": publisher.connection_id,
            "timestamp": now_ms(),
        }
        member.update(without_none({"data": raw.get("data"), "encoding": raw.get("encoding")}))
        return normalise_data(member)

    def leave_all(self, connection_id: str) -> None:
        for leave in self.presence.leaves_for(connection_id, now_ms()):
            self._store_presence(self.presence.apply(leave))

    def _store_presence(self, member: dict[str, Any]) -> None:
        channel_serial = self._clock.next()
        body = {"id": member["id"], "connectionId": member["connectionId"], "timestamp": member["timestamp"],
                "presence": [member]}
        with self._store.transaction():
            self._store.append_event(self.name, channel_serial, Action.PRESENCE, member["timestamp"], body)
        outbound = Outbound({"action": int(Action.PRESENCE), "channel": self.name,
                             "channelSerial": channel_serial, **body})
        for attachment in list(self.attachments.values()):
            if attachment.modes & Flag.PRESENCE_SUBSCRIBE:
                attachment.recipient.send(outbound)

    # --- helpers ---

    def _require(self, identity: Identity, op: str) -> None:
        if not identity.permits(self.name, op):
            raise not_permitted(f"{op} on channel {self.name!r}")

    def status(self) -> dict[str, Any]:
        return {
            "channelId": self.name,
            "name": self.name,
            "status": {
                "isActive": bool(self.attachments),
                "occupancy": {
                    "metrics": {
                        "connections": len(self.attachments),
                        "publishers": sum(1 for a in self.attachments.values() if a.modes & Flag.PUBLISH),
                        "subscribers": sum(1 for a in self.attachments.values() if a.modes & Flag.SUBSCRIBE),
                        "presenceMembers": len(self.presence),
                    }
                },
            },
        }


def _message_fields(raw: Any) -> dict[str, Any]:
    """The user-settable fields of an inbound message, type-checked; binary data held as bytes."""
    if not isinstance(raw, dict):
        raise bad_request("A message must be an object")
    fields: dict[str, Any] = {}
    for key, kind in _FIELD_TYPES:
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, kind):
            if key == "data":
                raise AblyError(40013, 400, "Invalid message data: send a string or binary (objects as JSON strings)")
            raise bad_request(f"Message {key} must be a {kind.__name__}")
        fields[key] = value
    return normalise_data(fields)


_FIELD_TYPES: tuple[tuple[str, Any], ...] = (
    ("name", str), ("encoding", str), ("extras", dict), ("version", dict), ("data", (str, bytes)))


def _concatenate(existing: Any, delta: Any) -> Any:
    if delta is None:
        return existing
    if existing is None:
        return delta
    if type(existing) is not type(delta):
        raise AblyError(40003, 400, "An append must have the same data type (string or binary) as the message")
    return existing + delta


class ChannelRegistry:
    """Channels by name, created on first use; each loads its serial clock from the store."""

    def __init__(self, store: Store, config: ServerConfig) -> None:
        self._store = store
        self._config = config
        self._channels: dict[str, Channel] = {}

    def get(self, name: Any) -> Channel:
        channel = self._channels.get(name) if isinstance(name, str) else None
        if channel is None:
            name = validate_channel_name(name)
            channel = self._channels[name] = Channel(name, self._store, self._config)
        return channel
