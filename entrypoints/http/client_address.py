"""Who is calling: the peer's address, or the one a trusted proxy forwarded.

``X-Forwarded-For`` is believed only when the peer is one of ``TASKQ_TRUSTED_PROXIES``;
its entries are then read right to left (each proxy appends the address it saw), and
the first one that is not itself a trusted proxy is the client. Anything a client
writes into the header lies further left and is never reached.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

IPV6_CLIENT_PREFIX = 64
"""An IPv6 client is counted by its /64: one host usually holds the whole prefix."""
MAX_ADDRESS_CHARS = 64
"""An unparsable forwarded entry is kept as text, cut to this length."""


def _parse(text: str) -> Address | None:
    text = text.strip().strip("[]")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddress:
    def __init__(self, trusted_proxies: Sequence[Network] = ()) -> None:
        self.trusted = tuple(trusted_proxies)

    def _is_trusted(self, address: Address | None) -> bool:
        return address is not None and any(address in network for network in self.trusted)

    def of(self, scope: Scope) -> str:
        """The client's address (an IPv6 one as its /64 network), as a bucket key."""
        client = scope.get("client")
        peer_text = str(client[0]) if client else "unknown"
        peer = _parse(peer_text)
        if self.trusted and self._is_trusted(peer):
            hops = [
                hop.strip()
                for name, value in scope["headers"]
                if name == b"x-forwarded-for"
                for hop in value.decode("latin-1").split(",")
                if hop.strip()
            ]
            for hop in reversed(hops):
                address = _parse(hop)
                if not self._is_trusted(address):
                    return _key(address, hop)
            if hops:  # every hop is a proxy of ours: the first one is the client
                return _key(_parse(hops[0]), hops[0])
        return _key(peer, peer_text)


def _key(address: Address | None, text: str) -> str:
    if address is None:
        return text[:MAX_ADDRESS_CHARS]
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)
