"""A local Ably-compatible server for development and tests; production is Ably itself.

`spawn()` starts one in a child process and returns once it accepts connections, which is how tests,
examples and the demo use it. `DevServer` (in `.app`) runs one inside the current event loop.
"""

from .process import DevServerStartError, RunningServer, spawn, start

__all__ = ["DevServerStartError", "RunningServer", "spawn", "start"]
