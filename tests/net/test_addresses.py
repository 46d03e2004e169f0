"""The one address policy, and the resolver that applies it inside the connector."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.net.addresses import has_control_character, host_refused, is_public_ip
from gateway.net.errors import BlockedAddress
from gateway.net.resolver import GuardedResolver

REFUSED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # link-local, cloud metadata
    "100.64.0.1",  # CGNAT
    "100.100.100.200",  # CGNAT, a cloud metadata address
    "0.0.0.0",
    "224.0.0.1",  # multicast (global to ipaddress)
    "239.255.255.250",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "::1",
    "::",
    "fe80::1",
    "fe80::1%1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",  # site-local (global to ipaddress)
    "2002::1",  # 6to4 (global to ipaddress)
    "2002:c0a8:0101::1",  # 6to4 wrapping 192.168.1.1
    "2001::1",  # Teredo
    "ff02::1",  # multicast
    "ff0e::1",  # global-scope multicast
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "::10.0.0.1",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::6440:1",  # NAT64 of 100.64.0.1
    "64:ff9b:1::808:808",  # local-use NAT64
    "2001:db8::1",  # documentation
]
PUBLIC = ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("ip", REFUSED)
def test_refused_addresses(ip: str) -> None:
    assert not is_public_ip(ip)
    assert host_refused(ip) and host_refused(f"[{ip}]" if ":" in ip else ip)


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses(ip: str) -> None:
    assert is_public_ip(ip) and not host_refused(ip)


def test_names() -> None:
    for name in ("localhost", "LOCALHOST", "localhost.", "api.localhost", "localhost.localdomain", "ip6-localhost"):
        assert host_refused(name), name
    for name in ("example.com", "localhost.example.com", "mylocalhost"):
        assert not host_refused(name), name  # a name is judged by what it resolves to
    assert not is_public_ip("example.com")


def test_control_characters() -> None:
    for bad in ("\r", "\n", "\t", "\x00", "\x1b", "\x7f", "\x85"):
        assert has_control_character(f"https://a.example/{bad}x")
    assert not has_control_character("https://a.example/p?q=1&r=é#f")


class Fixed(AbstractResolver):
    def __init__(self, *ips: str) -> None:
        self.ips = ips

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {"hostname": host, "host": ip, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
            for ip in self.ips
        ]

    async def close(self) -> None:
        return None


async def test_the_resolver_keeps_only_public_answers() -> None:
    """A name with a private and a public address: only the public one is answered (and so connected to)."""
    got = await GuardedResolver(Fixed("10.0.0.5", PUBLIC[1], "::1")).resolve("mixed.test", 443)
    assert [r["host"] for r in got] == [PUBLIC[1]]


async def test_the_resolver_refuses_a_name_with_no_public_answer() -> None:
    with pytest.raises(BlockedAddress, match="only to loopback"):
        await GuardedResolver(Fixed("127.0.0.1", "169.254.169.254")).resolve("evil.test", 80)
    with pytest.raises(BlockedAddress, match="local name"):
        await GuardedResolver(Fixed(PUBLIC[0])).resolve("localhost", 80)
