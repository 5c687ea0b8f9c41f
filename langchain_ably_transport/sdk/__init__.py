"""The SDK seam: what this package replaces in ably-python (`fixes`, `outbox`), reaches into (`channels`), reads
(`states`), and adds on every connection (`pacer`, one per client through `per_client`). Nothing above this layer
touches the SDK's private parts."""

from .fixes import SUPPORTED_VERSIONS, adopt
from .pacer import PublishPacer, pacer_for

__all__ = ["SUPPORTED_VERSIONS", "PublishPacer", "adopt", "pacer_for"]
