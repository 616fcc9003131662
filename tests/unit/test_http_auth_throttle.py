"""Failed authentication is throttled per client address; a load balancer's
X-Forwarded-For counts only from a trusted proxy; the state stays bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pydantic
import pytest
from dependency_injector import providers

from adapters.clock import ManualClock
from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from entrypoints.http.client_address import ClientAddress
from entrypoints.http.throttle import TokenBuckets

GOOD = {"Authorization": "Bearer key-one"}
BAD = {"Authorization": "Bearer guess"}


def secured(clock: ManualClock, **settings: object) -> Container:
    container = build_container(
        Settings(
            backend="memory",
            api_keys="key-one",
            auth_failure_burst=3,
            auth_failures_per_minute=6,  # one every 10 s once the burst is spent
            **settings,  # type: ignore[arg-type]
        )
    )
    container.clock.override(providers.Object(clock))
    return container


@asynccontextmanager
async def clients(container: Container) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Clients of one app, each connecting from its own address (the ASGI peer)."""
    app = create_app(container)
    async with app.router.lifespan_context(app):
        made = {
            peer: httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=(peer, 40000)),
                base_url="http://test",
            )
            for peer in ("203.0.113.7", "198.51.100.9", "10.0.0.2")
        }
        try:
            yield made
        finally:
            for client in made.values():
                await client.aclose()


async def test_failed_keys_past_the_burst_are_429_for_that_address_only() -> None:
    clock = ManualClock()
    async with clients(secured(clock)) as by_peer:
        attacker, neighbour = by_peer["203.0.113.7"], by_peer["198.51.100.9"]
        failures = [(await attacker.get("/metrics", headers=BAD)).status_code for _ in range(3)]
        throttled = await attacker.get("/metrics", headers=BAD)
        missing = await attacker.get("/metrics")
        right_key = await attacker.get("/metrics", headers=GOOD)  # not even compared
        other = await neighbour.get("/metrics", headers=GOOD)
        health = await attacker.get("/health")

    assert failures == [403, 403, 403]
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "10"
    assert "too many failed authentications" in throttled.json()["error"]
    assert missing.status_code == 429 and right_key.status_code == 429
    assert other.status_code == 200 and health.status_code == 200


async def test_the_throttle_refills_at_the_configured_rate() -> None:
    clock = ManualClock()
    async with clients(secured(clock)) as by_peer:
        attacker = by_peer["203.0.113.7"]
        for _ in range(3):
            await attacker.get("/metrics")  # 401s count as failures too
        throttled = await attacker.get("/metrics", headers=GOOD)
        await clock.advance(10)
        again = await attacker.get("/metrics", headers=GOOD)

    assert throttled.status_code == 429
    assert again.status_code == 200


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    clock = ManualClock()
    container = secured(clock, trusted_proxies="10.0.0.0/24")
    async with clients(container) as by_peer:
        spoofer, proxy = by_peer["203.0.113.7"], by_peer["10.0.0.2"]
        for n in range(3):  # a new forged address each time: still one peer
            await spoofer.get("/metrics", headers={**BAD, "X-Forwarded-For": f"192.0.2.{n}"})
        spoofer_throttled = await spoofer.get(
            "/metrics", headers={**GOOD, "X-Forwarded-For": "192.0.2.99"}
        )

        # Behind the trusted proxy, each forwarded client has its own budget; what a
        # client writes to the left of the proxy's entry is not believed.
        for _ in range(3):
            await proxy.get("/metrics", headers={**BAD, "X-Forwarded-For": "1.1.1.1, 198.51.100.1"})
        client_throttled = await proxy.get(
            "/metrics", headers={**GOOD, "X-Forwarded-For": "2.2.2.2, 198.51.100.1"}
        )
        other_client = await proxy.get(
            "/metrics", headers={**GOOD, "X-Forwarded-For": "198.51.100.2"}
        )

    assert spoofer_throttled.status_code == 429
    assert client_throttled.status_code == 429
    assert other_client.status_code == 200


def scope(peer: str, forwarded: str | None = None) -> dict[str, object]:
    headers = [] if forwarded is None else [(b"x-forwarded-for", forwarded.encode())]
    return {"type": "http", "client": (peer, 1234), "headers": headers}


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        ("203.0.113.7", "192.0.2.1", "203.0.113.7"),  # untrusted peer: header ignored
        ("10.0.0.2", "192.0.2.1", "192.0.2.1"),
        ("10.0.0.2", "6.6.6.6, 192.0.2.1, 10.0.0.9", "192.0.2.1"),  # proxies skipped
        ("10.0.0.2", "10.0.0.7", "10.0.0.7"),  # only proxies: the first is the client
        ("10.0.0.2", "not-an-address", "not-an-address"),
        ("10.0.0.2", "", "10.0.0.2"),
        ("2001:db8:1:2:3:4:5:6", None, "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", None, "203.0.113.7"),
    ],
)
def test_client_address(peer: str, forwarded: str | None, expected: str) -> None:
    trusted = Settings(backend="memory", trusted_proxies="10.0.0.0/24").trusted_proxy_networks
    assert ClientAddress(trusted).of(scope(peer, forwarded)) == expected


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert Settings(trusted_proxies=" 10.0.0.1 , fd00::/8 ").trusted_proxies == "10.0.0.1,fd00::/8"
    with pytest.raises(pydantic.ValidationError, match="'proxy.local' is not an IP address"):
        Settings(trusted_proxies="10.0.0.1,proxy.local")


def test_token_buckets_keep_at_most_max_keys_forgetting_the_least_recent() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=0.1, burst=1, monotonic=lambda: now[0], max_keys=100)
    for n in range(10_000):
        buckets.take(f"198.51.100.{n}")
    assert len(buckets) == 100

    buckets.take("recent")
    buckets.take("198.51.100.9950")  # touched again: kept
    for n in range(99):
        buckets.take(f"203.0.113.{n}")
    assert buckets.wait("198.51.100.9950") > 0
    assert buckets.wait("recent") == 0  # forgotten: a full bucket again
