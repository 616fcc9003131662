"""The ceiling for the sustained-load benchmark: a trivial Starlette POST endpoint.

    uvicorn benchmarks.trivial_app:app

It reads the JSON body and answers 201 with a small JSON object, as ``POST /tasks``
does, and nothing else: what uvicorn and Starlette cost on this machine for the same
load generator.
"""

from __future__ import annotations

import itertools

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_ids = itertools.count()


async def submit(request: Request) -> Response:
    body = await request.json()
    return JSONResponse({"id": str(next(_ids)), "type": body.get("type")}, status_code=201)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "healthy"})


app = Starlette(routes=[Route("/tasks", submit, methods=["POST"]), Route("/health", health)])
