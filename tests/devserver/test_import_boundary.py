"""The dev server is a program of its own inside the package: it loads nothing of the LangChain side.

That keeps its start-up short (`benchmarks/devserver_startup.py`), and keeps it honest as a stand-in for Ably.
"""

from __future__ import annotations

import json
import subprocess
import sys

# What the package root loads eagerly besides the dev server: the error tree, the ledger and its lazy names' helper
# (standard library only).
ALLOWED = {"langchain_ably_transport", "langchain_ably_transport.errors", "langchain_ably_transport.lazy",
           "langchain_ably_transport.ledger"}


def test_the_dev_server_imports_nothing_of_langchain_langgraph_ably_or_the_rest_of_the_library():
    script = ("import json, sys\n"
              "import langchain_ably_transport.devserver.__main__\n"
              "import langchain_ably_transport.devserver.app, langchain_ably_transport.devserver.cli\n"
              "print(json.dumps(sorted(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(done.stdout))
    foreign = {name for name in loaded if name.split(".")[0] in ("langchain_core", "langgraph", "langchain", "ably")}
    library = {name for name in loaded if name.startswith("langchain_ably_transport")
               and not name.startswith("langchain_ably_transport.devserver")}
    assert foreign == set() and library <= ALLOWED
    assert "langchain_ably_transport.devserver.app" in loaded
