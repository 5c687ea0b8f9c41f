"""The Vercel UIMessage codec: chunk and input tables, the message encoder, the decoder and the accumulator.

Pure: the encoder writes through a `ChannelWriter` the session provides and nothing here does other I/O.
"""

from . import chunks, vercel
from .accumulator import UIMessageAccumulator
from .chunks import (
    Chunk,
    CodecMessage,
    ForkSeed,
    Input,
    InputEvent,
    UIMessage,
    UIMessageChunk,
    regenerate,
    tool_approval_response,
    tool_result,
    tool_result_error,
    user_message,
)
from .decoder import DecodedEvent, Decoder
from .encoder import (
    DEFAULT_COALESCE_WINDOW,
    DEFAULT_ENVELOPE_RESERVE,
    DEFAULT_MAX_MESSAGE_BYTES,
    ChannelWriter,
    MessageEncoder,
    OnMessage,
)
from .vercel import ADAPTER_TAG, decode_input, encode_discrete, encode_input

__all__ = [
    "ADAPTER_TAG",
    "DEFAULT_COALESCE_WINDOW",
    "DEFAULT_ENVELOPE_RESERVE",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ChannelWriter",
    "Chunk",
    "CodecMessage",
    "DecodedEvent",
    "Decoder",
    "ForkSeed",
    "Input",
    "InputEvent",
    "MessageEncoder",
    "OnMessage",
    "UIMessage",
    "UIMessageAccumulator",
    "UIMessageChunk",
    "chunks",
    "decode_input",
    "encode_discrete",
    "encode_input",
    "regenerate",
    "tool_approval_response",
    "tool_result",
    "tool_result_error",
    "user_message",
    "vercel",
]
