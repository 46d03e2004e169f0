"""The neonize driver: real WhatsApp through neonize (whatsmeow, in Go, over ctypes).

=============  ====================================================================
``patches``    neonize imported once, its import-time side effects contained
``translate``  neonize's protobuf events and answers → the seam's types (pure)
``threads``    the daemon call pool and the lock that guards goneonize's Go maps
``driver``     :class:`NeonizeDriver`: connection attempts, Go callbacks, calls
``sessions``   whatsmeow on PostgreSQL: the database string, the schema upgrade
=============  ====================================================================

Importing this package loads neonize's Go library (a second or more).
"""

from __future__ import annotations

from gateway.drivers.neonize.driver import NeonizeDriver

__all__ = ["NeonizeDriver"]
