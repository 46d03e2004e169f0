"""The baseline: a bare Starlette JSON endpoint, served like the gateway.

Same uvicorn settings as ``python -m gateway`` (uvloop, httptools, one worker,
no access log, log level warning, no server header), no middleware, no auth,
no store. ``GET /health`` answers a small JSON object; ``POST /echo`` parses a
JSON body and answers it back, the least a JSON POST endpoint can do.

    python -m bench.bare_app --port 8001
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"success": True, "data": None, "message": "ok"})


async def echo(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"success": True, "data": body, "message": "ok"})


app = Starlette(routes=[Route("/health", health, methods=["GET"]), Route("/echo", echo, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
        server_header=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
