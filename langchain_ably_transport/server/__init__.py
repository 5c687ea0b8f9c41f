"""Serving a graph in production: the ASGI app of a replica (`create_app`), its background runs and its metrics.

Needs the `server` extra (`pip install 'langchain-ably-transport[server]'`: Starlette, and uvicorn to run it).
"""

from .app import create_app
from .runs import Admission, RunSupervisor

__all__ = ["Admission", "RunSupervisor", "create_app"]
