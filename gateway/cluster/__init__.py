"""One gateway of N nodes on PostgreSQL and NATS (CONTRACT §14; README "Running a cluster").

leases.py (the leases this node holds, self-fenced on its monotonic clock), membership.py (the live
nodes), ownership.py (which node runs which device: spread, rebalance, start/stop through listeners),
bus.py (the connection to NATS), events.py (WebSocket events between nodes), invalidate.py
(changes every node applies), forward.py (calls for a device on another node), ratelimits.py (shared counts). Built by the composition root only when ``Settings.cluster``.
"""
