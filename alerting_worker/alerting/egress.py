"""The guard on every outgoing connection a channel makes (webhook, Slack, PagerDuty, SMTP).

A destination is refused when its host is, or resolves to, a loopback, private, link-local,
multicast, unspecified or otherwise non-public address (IPv4, IPv6, and IPv4 embedded in IPv6:
mapped ``::ffff:a.b.c.d``, 6to4, Teredo), unless it is listed in ``FLEETWATCH_ALLOWED_TARGETS``
(CIDRs or host names). Every address a name resolves to must pass, and the connection is then
made to one of the checked addresses (never by name again), so a DNS answer that changes
between check and connect (rebinding) cannot redirect it.

The check runs twice: when a channel is validated (a name that does not resolve then is
accepted; nothing can be said about it yet) and before every delivery (where a name that does
not resolve is a transient error). ``resolve`` is the one place names are looked up.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import logging
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ALLOWED_TARGETS_SETTING = "FLEETWATCH_ALLOWED_TARGETS"
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


class TargetRefused(ValueError):
    """The destination is not a public address (nor allowed by FLEETWATCH_ALLOWED_TARGETS)."""


class TargetUnresolvable(ValueError):
    """The destination's name does not resolve (now)."""


def resolve(host: str, port: int) -> list[str]:
    """Return the addresses a host name resolves to (tests replace this function)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class AllowedTargets:
    networks: tuple[Network, ...]
    names: frozenset[str]

    def allows_name(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.names

    def allows_address(self, address: Address) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


@functools.lru_cache(maxsize=8)
def parse_allowed_targets(value: str) -> AllowedTargets:
    """Parse a comma-separated list of CIDRs, addresses and host names; raise ValueError naming a bad one."""
    networks: list[Network] = []
    names: set[str] = set()
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
            continue
        except ValueError:
            pass
        if not all(_LABEL.match(label) for label in item.rstrip(".").split(".")):
            raise ValueError(f"{ALLOWED_TARGETS_SETTING}: {item!r} is neither a CIDR nor a host name")
        names.add(item.lower().rstrip("."))
    return AllowedTargets(tuple(networks), frozenset(names))


def allowed_targets() -> AllowedTargets:
    """Return the allow-list from the Django setting, or the environment outside Django."""
    try:
        from django.conf import settings

        value = ",".join(getattr(settings, ALLOWED_TARGETS_SETTING))
    except Exception:  # no Django settings (a tool run outside the server), or the setting is absent
        value = os.environ.get(ALLOWED_TARGETS_SETTING, "")
    return parse_allowed_targets(value)


def address_class(address: Address) -> str | None:
    """Return why an address is not a public destination ("loopback", "private", ...), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None:
            return address_class(embedded) or None
    for name, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
    ):
        if flag:
            return name
    return None if address.is_global else "reserved"


def check_host(host: str, port: int, field: str, resolve_now: bool = True) -> list[str]:
    """Return the addresses that may be connected to for ``host``; raise TargetRefused otherwise.

    With ``resolve_now`` False (validation), a name that does not resolve is accepted and
    returns []; at delivery it raises TargetUnresolvable.
    """
    allowed = allowed_targets()
    literal = _literal(host)
    if literal is not None:
        _refuse_unless_allowed(literal, allowed, field, host)
        return [str(literal)]
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        if not resolve_now:
            return []
        raise TargetUnresolvable(f"{field}: the host name {host!r} does not resolve") from exc
    if allowed.allows_name(host):
        return addresses
    for text in addresses:
        _refuse_unless_allowed(ipaddress.ip_address(text.split("%")[0]), allowed, field, host)
    if not addresses:
        raise TargetUnresolvable(f"{field}: the host name {host!r} does not resolve")
    return addresses


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def _refuse_unless_allowed(address: Address, allowed: AllowedTargets, field: str, host: str) -> None:
    kind = address_class(address)
    if kind is None or allowed.allows_address(address) or allowed.allows_name(host):
        return
    raise TargetRefused(
        f"{field} points to a {kind} address ({host}); outgoing requests go to public addresses only "
        f"unless {ALLOWED_TARGETS_SETTING} lists it"
    )


def check_url(url: str, field: str, resolve_now: bool = True) -> list[str]:
    """Check an http(s) URL's host; return the addresses it may be connected to."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{field} must be an http(s) URL")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError(f"{field} has a bad port") from None
    return check_host(parts.hostname, port, field, resolve_now)


# --- connections pinned to a checked address -------------------------------------------------


def _pinned_create_connection(addresses: list[str]) -> Callable[..., socket.socket]:
    """Return a socket.create_connection that ignores the name and tries the checked addresses."""

    def create(address: tuple[str, int], timeout: Any = None, source: Any = None) -> socket.socket:
        last: OSError | None = None
        for ip in addresses:
            try:
                return socket.create_connection((ip, address[1]), timeout, source)
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")

    return create


@dataclass(frozen=True)
class HttpAnswer:
    status: int

    @property
    def status_class(self) -> str:
        return f"{self.status // 100}xx"


class EgressError(Exception):
    """A request that got no usable answer; ``message`` is safe to show (no remote text)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    field: str = "url",
    max_redirects: int = 0,
) -> HttpAnswer:
    """POST to a checked URL over a connection pinned to the checked address.

    Redirects are followed only up to ``max_redirects`` (0 by default), each hop checked the
    same way. The remote body is never read into a message: a caller sees the status only,
    and every failure to get an HTTP answer reads the same whatever its cause (an open port
    that does not speak HTTP, a closed port and a timeout cannot be told apart).
    """
    for _hop in range(max_redirects + 1):
        try:
            addresses = check_url(url, field, resolve_now=True)
        except TargetUnresolvable as exc:
            raise EgressError(str(exc)) from None
        except ValueError as exc:  # TargetRefused or a bad redirect target: retrying cannot help
            raise EgressError(str(exc), permanent=True) from None
        parts = urlsplit(url)
        status, location = _post_once(parts, addresses, body, headers, timeout)
        if status not in REDIRECT_CODES:
            return HttpAnswer(status)
        if not location or _hop == max_redirects:
            raise EgressError(
                f"HTTP {status} (3xx): redirect not followed (NOTIFY_MAX_REDIRECTS={max_redirects})",
                permanent=True,
            )
        url = urljoin(url, location)
    raise AssertionError("unreachable")


def _post_once(
    parts: Any, addresses: list[str], body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int, str]:
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    conn._create_connection = _pinned_create_connection(addresses)  # type: ignore[attr-defined]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        location = response.getheader("Location", "") or ""
        response.read(65536)  # drained (so the connection closes cleanly), never shown
        return response.status, location
    except ssl.SSLCertVerificationError as exc:
        raise EgressError(
            f"TLS certificate of {parts.hostname} not trusted: {exc.verify_message}", permanent=True
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        log.info("egress: no HTTP answer from %s (%s)", parts.hostname, type(exc).__name__)
        raise EgressError(f"no HTTP answer from {parts.hostname}") from None
    finally:
        conn.close()


class _PinnedSMTPMixin:
    """Connect to the checked addresses; the name stays the TLS server name (STARTTLS and SSL)."""

    def __init__(self, addresses: list[str], *args: Any, **kwargs: Any) -> None:
        self._addresses = addresses
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        last: OSError | None = None
        for ip in self._addresses:
            try:
                return super()._get_socket(ip, port, timeout)  # type: ignore[misc]
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")


class PinnedSMTP(_PinnedSMTPMixin, smtplib.SMTP):
    """smtplib.SMTP connected to a checked address."""


class PinnedSMTPSSL(_PinnedSMTPMixin, smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL connected to a checked address."""
