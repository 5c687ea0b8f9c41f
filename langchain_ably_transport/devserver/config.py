"""Dev-server configuration: credentials, channel rules and Ably's limits, all overridable for tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
    """Service limits, defaulting to Ably's Free/Standard values.

    A rate of 0 disables that limit (`account_rate`, what the app's connections publish together, is off by default:
    Ably's is 500 to 10,000 msg/s by plan); `retention_s=None` keeps history forever (Ably's persistence rules
    keep it 24 h to 365 days; without one, Ably keeps 120 s). A connection that drops without closing keeps
    its presence members for `presence_leave_delay_s` (Ably: 15 s), so a quick resume is not seen as leaving.
    A client that sends nothing, not even a pong to a WebSocket ping, for `client_timeout_s` has its socket
    dropped as lost (0 never drops one): a frozen process whose TCP connection stays open must still leave.
    """

    max_message_size: int = 65536
    max_frame_size: int = 524288
    inbound_rate: float = 50.0
    account_rate: float = 0.0
    protocol_rate: float = 2000.0
    connection_state_ttl_s: float = 120.0
    presence_leave_delay_s: float = 15.0
    max_idle_interval_s: float = 15.0
    client_timeout_s: float = 15.0
    retention_s: float | None = None
    append_rollup_window_ms: int = 40
    max_channels_per_connection: int = 200
    max_presence_members: int = 200
    max_outbound_queue: int = 20000
    token_renew_notice_s: float = 30.0


@dataclass(frozen=True)
class ApiKey:
    """An app key `appId.keyId:secret` with the capability it grants (everything by default)."""

    name: str
    secret: str
    capability: dict[str, list[str]] = field(default_factory=lambda: {"*": ["*"]})

    @classmethod
    def parse(cls, text: str) -> ApiKey:
        name, sep, secret = text.partition(":")
        if not sep or not name or not secret or "." not in name:
            raise ValueError(f"An API key looks like appId.keyId:secret, not {text!r}")
        return cls(name=name, secret=secret)

    @property
    def app_id(self) -> str:
        return self.name.split(".", 1)[0]

    def __str__(self) -> str:
        return f"{self.name}:{self.secret}"


DEFAULT_KEY = "dev.key:local-development-secret-not-for-production"


@dataclass(frozen=True)
class ServerConfig:
    """What one dev-server process serves.

    `mutable_namespaces` mirrors Ably's "message annotations, updates, deletes and appends" channel rule:
    `("*",)` enables it everywhere, otherwise only for channels in the named namespaces (`ns:...`).
    `commit_interval_ms`: a busy server commits (and so ACKs and delivers) at most once per interval, in groups.
    """

    keys: tuple[ApiKey, ...] = (ApiKey.parse(DEFAULT_KEY),)
    data_path: str = "ably-dev.sqlite3"
    limits: Limits = Limits()
    mutable_namespaces: tuple[str, ...] = ("*",)
    server_id: str = "devserver"
    commit_interval_ms: float = 1.0

    def key_named(self, name: str) -> ApiKey | None:
        return next((key for key in self.keys if key.name == name), None)

    def allows_mutations(self, channel: str) -> bool:
        if "*" in self.mutable_namespaces:
            return True
        namespace, sep, _ = channel.partition(":")
        return bool(sep) and namespace in self.mutable_namespaces
