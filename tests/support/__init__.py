"""Helpers shared by the test modules (and, for ``proc``, by the benchmarks).

- ``settings``: the test constants (admin key, device tokens) and ``make_settings``.
- ``asgi``: drives an ASGI app in-process — its lifespan, and an httpx transport with a client address.
- ``gateway``: ``InProcessGateway`` (the default ``gw``) and ``LiveGateway`` (uvicorn on a real socket).
- ``frames``: a WebSocket client that records frames, with deadline-bounded waits.
- ``accounts``: ``Tenants`` — accounts created on a gateway, each with its own client.
- ``webhook_receiver``: a raw HTTP/1.1 receiver that records webhook deliveries.
- ``proc``: a server in a child process (the e2e tests and ``python -m bench`` share it).
"""
