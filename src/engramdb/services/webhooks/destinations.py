"""Where webhooks may be sent: not into the server's own network, unless an operator allows it.

A webhook URL is chosen by an organization's admin, and the worker that POSTs to it sits inside the
operator's network; the delivery log shows the status of each attempt. So by default a destination is
refused when it is (or resolves to) a loopback, private (RFC 1918, unique-local ``fc00::/7``), link-local,
shared (``100.64.0.0/10``), multicast, unspecified, reserved or documentation address, or a cloud
metadata endpoint (``169.254.169.254``, ``fd00:ec2::254``, ``metadata.google.internal`` …), in every
textual form the resolver accepts (``127.1``, ``0x7f.1``, ``2130706433``, ``[::ffff:127.0.0.1]``,
``localhost.``) and through the IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4, NAT64).

* :func:`refusal` is checked when an endpoint is created or its URL changed: without DNS, so it sees
  addresses written in the URL and the names that are internal by definition (``localhost``,
  ``*.localhost``, metadata names).
* :func:`resolve` is called by the webhook client (``sender.py``) each time it opens a connection:
  every address the host resolves to is checked, and the connection goes to one of those very
  addresses, so a DNS answer that changes between the check and the connection cannot redirect it.

``ENGRAM_WEBHOOK_ALLOW_HOSTS`` (names: whatever they resolve to) and ``ENGRAM_WEBHOOK_ALLOW_NETWORKS``
(CIDR ranges) let an operator allow the internal receivers they trust. A cloud metadata address stays
refused inside an allowed range; only a range that is exactly that address allows it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import httpx

from engramdb.config import Settings

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

HOW_TO_ALLOW = "an operator may allow it with ENGRAM_WEBHOOK_ALLOW_HOSTS or ENGRAM_WEBHOOK_ALLOW_NETWORKS"

# Instance metadata services: AWS (IMDS, ECS, EKS pod identity), GCP, Azure (IMDS and WireServer, a public
# address), Alibaba, Oracle, OpenStack, DigitalOcean, Tencent. Most are link-local anyway; the list keeps
# them refused inside an allowed range too.
METADATA_ADDRESSES: frozenset[Address] = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "169.254.0.23",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "100.100.100.200",
        "168.63.129.16",
        "192.0.0.192",
    )
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
LOCAL_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "localhost6", "localhost6.localdomain6", "ip6-localhost", "ip6-loopback"}
)
_NAT64 = IPv6Network("64:ff9b::/96")
_COMPATIBLE = IPv6Network("::/96")


class DestinationRefused(Exception):
    """The destination is internal and not allowed: nothing was sent, and sending again will not help."""


@dataclass(frozen=True)
class Policy:
    """The operator's allow lists (``ENGRAM_WEBHOOK_ALLOW_HOSTS``, ``ENGRAM_WEBHOOK_ALLOW_NETWORKS``)."""

    hosts: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(hosts=settings.webhook_allow_hosts, networks=settings.webhook_allow_networks)

    def allows_host(self, host: str) -> bool:
        name = normalize(host)
        return any(name == h or (h.startswith("*.") and name.endswith(h[1:])) for h in self.hosts)

    def refuses(self, address: Address) -> str | None:
        """Why ``address`` is refused (``"loopback"``, ``"private"`` …), or None when it may be reached."""
        reason = _internal(address)
        if reason is None:
            return None
        forms = [address, *_embedded(address)]
        metadata = [a for a in forms if a in METADATA_ADDRESSES]
        for network in self.networks:
            if metadata:
                if any(network.num_addresses == 1 and a in network for a in metadata):
                    return None
            elif any(a in network for a in forms):
                return None
        return reason


def normalize(host: str) -> str:
    """A host as compared: lower case, no brackets, no trailing dot (``localhost.`` is ``localhost``)."""
    return host.strip().strip("[]").rstrip(".").lower()


def _embedded(address: Address) -> Iterator[IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for: mapped, 6to4, NAT64, IPv4-compatible."""
    if isinstance(address, IPv4Address):
        return
    if address.ipv4_mapped is not None:
        yield address.ipv4_mapped
    if address.sixtofour is not None:
        yield address.sixtofour
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):
        yield IPv4Address(int(address) & 0xFFFFFFFF)


def _internal(address: Address) -> str | None:
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for inner in _embedded(address):
        reason = _internal(inner)
        if reason is not None:
            return f"{reason}, as {inner}"
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("site-local", isinstance(address, IPv6Address) and address.is_site_local),
        ("reserved", address.is_reserved),
        ("not public", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def _literal(host: str) -> list[Address]:
    """The addresses a host written as a number stands for, as the resolver reads it (``127.1``, ``0x7f.1``,
    ``2130706433``, ``::ffff:127.0.0.1``); empty for a name. No DNS query is made."""
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return []
    return [ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def refusal(policy: Policy, url: str) -> str | None:
    """Why an endpoint URL may not be registered (its host is internal and not allowed), or None. Checked
    without DNS; names that resolve to internal addresses are refused at each delivery."""
    host = normalize(httpx.URL(url).raw_host.decode("ascii"))
    if policy.allows_host(host):
        return None
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return f"the host {host} is this machine; {HOW_TO_ALLOW}"
    if host in METADATA_NAMES:
        return f"the host {host} is a cloud metadata service; {HOW_TO_ALLOW}"
    for address in _literal(host):
        reason = policy.refuses(address)
        if reason is not None:
            return f"the host {host} is {address}, an internal address ({reason}); {HOW_TO_ALLOW}"
    return None


async def resolve(policy: Policy, host: str, port: int) -> list[str]:
    """The addresses to connect to for ``host``, every one of them checked (an allowed host is not).
    Raises :class:`DestinationRefused`, or ``OSError`` when the name does not resolve (worth retrying)."""
    name = normalize(host)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OSError(f"{name} has no address")
    if policy.allows_host(name):
        return addresses
    if name in LOCAL_NAMES or name.endswith(".localhost") or name in METADATA_NAMES:
        raise DestinationRefused(f"not sent: {name} is an internal name; {HOW_TO_ALLOW}")
    for address in addresses:
        reason = policy.refuses(ip_address(address.split("%", 1)[0]))
        if reason is not None:
            raise DestinationRefused(
                f"not sent: {name} is at {address}, a loopback, private or reserved address ({reason}); {HOW_TO_ALLOW}"
            )
    return addresses
