"""The values every test shares (no gateway import: ``proc`` and the benchmarks use them too)."""

from __future__ import annotations

API_KEY = "test-admin-key"
TOKEN = "60123456789"
OTHER = "60198765432"
