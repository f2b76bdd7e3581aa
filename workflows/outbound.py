"""The one way out: every outgoing HTTP request a handler makes goes through `fetch`.

Workflows are written by users, so a URL in a config is untrusted: without a guard, a node could
read the cloud metadata service, the admin port of a database on the private network, or the
engine's own Redis. `fetch` therefore

- accepts http and https only, with a host that is a DNS name or a canonical IP address: numeric
  spellings libc would also accept (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`) are refused
  outright, as are credentials in the URL and IPv6 zone ids;
- resolves the host once and refuses it when ANY address it resolves to is loopback, private,
  link-local (the metadata service 169.254.169.254), shared (CGNAT, 100.64.0.0/10), multicast,
  reserved or unspecified, IPv4 or IPv6, including IPv4 embedded in IPv6 (mapped, compatible,
  6to4, NAT64);
- connects to the address it checked, not to the name: the request goes to the vetted IP with
  the original Host header, and TLS verifies the certificate against the original name (SNI), so
  a DNS answer that changes between the check and the connection (rebinding) changes nothing;
- follows redirects itself, vetting every hop the same way, at most OUTBOUND_MAX_REDIRECTS;
- reads the body as a stream and stops past the size limit.

OUTBOUND_ALLOWLIST opens named targets (host names, `*.suffix`, IP addresses, CIDR networks) for
operators whose services live on private addresses. A refused URL raises `Refused` (permanent,
code `ssrf_blocked`) before any connection is made.
"""

import functools
import ipaddress
import json as jsonlib
import re
import socket
import ssl
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import certifi
import httpx
from django.conf import settings

from resilience.errors import ClassifiedError
from workflows.handlers import HandlerError, TaskContext

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = {"http": 80, "https": 443}
REDIRECTS = {301, 302, 303, 307, 308}
# A server asking for a longer pause than this fails the task instead (a dead letter someone can
# retry later), rather than parking it for hours.
MAX_RETRY_AFTER_SECONDS = 3600.0
USER_AGENT = "workflow-orchestrator"
# Set by the guard itself, never taken from a config.
CONTROLLED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}
# What a redirect to another origin keeps of the caller's headers (credentials stay behind).
CROSS_ORIGIN_HEADERS = {"accept", "accept-language", "user-agent", "idempotency-key"}

DNS_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
# A last label like this makes the host a number to libc (inet_aton), never a name: no top-level
# domain is numeric.
NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
DOTTED_QUAD = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


class Refused(HandlerError):
    """The guard refused a URL (or a redirect to it); no connection was made."""

    def __init__(self, message: str):
        super().__init__(message, code="ssrf_blocked", permanent=True)


class ResponseTooLarge(HandlerError):
    """The response body passed the size limit; reading stopped there."""

    def __init__(self, message: str):
        super().__init__(message, code="response_too_large", permanent=True)


@dataclass(frozen=True)
class Allowlist:
    """Targets an operator opened (OUTBOUND_ALLOWLIST): host names, `*.suffix` wildcards, and IP
    addresses or networks. A listed name may resolve to any address; a listed network opens the
    addresses in it, whatever name led there."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> "Allowlist":
        """ValueError for an entry that is neither a host name, a wildcard nor an address/network."""
        names, suffixes, networks = set(), [], []
        for raw in entries:
            entry = raw.strip().lower().strip("[]").rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.removeprefix("*.")
            if not all(DNS_LABEL.fullmatch(label) for label in name.split(".")) or NUMERIC_LABEL.fullmatch(
                name.rsplit(".", 1)[-1]
            ):
                raise ValueError(f"{raw!r} is not a host name, '*.domain', IP address or CIDR network")
            if entry.startswith("*."):
                suffixes.append("." + name)
            else:
                names.add(name)
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    def allows_name(self, host: str) -> bool:
        return host in self.names or host.endswith(self.suffixes)

    def allows_address(self, address: Address) -> bool:
        return any(address in network for network in self.networks if network.version == address.version)


@dataclass(frozen=True)
class Policy:
    """The guard's settings: what is open, how many redirects, and the default bounds."""

    allowlist: Allowlist = Allowlist()
    max_redirects: int = 5
    timeout_seconds: float = 30.0
    max_response_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class Target:
    """A vetted hop: where the URL points and the address the connection will go to."""

    url: httpx.URL
    host: str
    port: int
    address: Address

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.url.scheme, self.host, self.port

    def connect_url(self) -> httpx.URL:
        """The same request aimed at the vetted address instead of the name."""
        return httpx.URL(
            scheme=self.url.scheme, host=str(self.address), port=self.port, raw_path=self.url.raw_path
        )


@dataclass(frozen=True)
class Fetched:
    """A response read in full (within the limit)."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str
    elapsed_ms: float
    charset: str | None = None

    def text(self) -> str:
        try:
            return self.content.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")

    def data(self) -> Any:
        """The body parsed as JSON when the server says it is JSON (and it parses), else text."""
        text = self.text()
        if "json" in self.headers.get("content-type", "").lower():
            try:
                return _json_loads(text)
            except ValueError:
                pass
        return text

    def headers_dict(self) -> dict[str, str]:
        """Header names in lower case; a repeated header's values joined with ', '."""
        joined: dict[str, str] = {}
        for name, value in self.headers.multi_items():
            joined[name] = f"{joined[name]}, {value}" if name in joined else value
        return joined


def current_policy() -> Policy:
    """The guard as the settings configure it."""
    return _policy(
        tuple(settings.OUTBOUND_ALLOWLIST),
        settings.OUTBOUND_MAX_REDIRECTS,
        settings.OUTBOUND_TIMEOUT_SECONDS,
        settings.OUTBOUND_MAX_RESPONSE_BYTES,
    )


@functools.lru_cache(maxsize=8)
def _policy(allowlist: tuple[str, ...], redirects: int, timeout: float, max_bytes: int) -> Policy:
    return Policy(Allowlist.parse(allowlist), redirects, timeout, max_bytes)


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, in the resolver's order. The outside world: tests
    replace this function (DNS rebinding, names that resolve to private addresses)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(address: Address) -> str | None:
    """Why connecting to `address` is refused, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and not (address.is_unspecified or address.is_loopback):
        if address in LOCAL_NAT64:
            return "a local-use NAT64 address"
        if int(address) >> 32 == 0:
            return "an IPv4-compatible IPv6 address (deprecated)"
        embedded = _embedded_ipv4(address)
        if embedded is not None:  # the IPv4 address it reaches decides
            reason = refusal(embedded)
            return f"{reason} ({embedded} embedded in an IPv6 address)" if reason else None
    for flag, reason in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address (the cloud metadata service lives there)"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(address, flag):
            return reason
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "a shared (CGNAT) address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4 or NAT64 IPv6 address reaches."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def vet(url: str | httpx.URL, policy: Policy) -> Target:
    """Check a URL and resolve its host once: the Target to connect to, or Refused."""
    parsed = url if isinstance(url, httpx.URL) else parse_url(url)
    try:
        raw_host = parsed.raw_host.decode("ascii")
        port = parsed.port
    except (httpx.InvalidURL, UnicodeError, TypeError, ValueError) as exc:
        raise Refused(f"not a URL the engine can call: {exc}") from None
    if parsed.scheme not in SCHEMES:
        raise Refused(f"only http and https URLs are allowed, not {parsed.scheme or 'no scheme'!r}")
    if parsed.userinfo:
        raise Refused("URLs with credentials (user@host) are refused; send them in headers")
    host, literal = _host(raw_host)
    port = port or SCHEMES[parsed.scheme]
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise ClassifiedError(
                f"cannot resolve {host!r}: {exc}", code="dns_error", category="transient"
            ) from None
        if not found:
            raise ClassifiedError(f"{host!r} resolves to no address", code="dns_error", category="transient")
        addresses = [_address(value, host) for value in found]
    if not policy.allowlist.allows_name(host):
        for address in addresses:
            if policy.allowlist.allows_address(address):
                continue
            reason = refusal(address)
            if reason:
                shown = host if literal is not None else f"{host} (resolves to {address})"
                raise Refused(
                    f"{shown} is {reason}; the engine does not call it (OUTBOUND_ALLOWLIST opens it)"
                )
    return Target(parsed, host, port, addresses[0])


def parse_url(url: str, params: Mapping[str, Any] | None = None) -> httpx.URL:
    """`url` (with `params` merged into its query) as httpx reads it, or Refused."""
    try:
        parsed = httpx.URL(url)
        return parsed.copy_merge_params(params) if params else parsed
    except (httpx.InvalidURL, UnicodeError, TypeError, ValueError) as exc:
        raise Refused(f"not a URL the engine can call: {exc}") from None


def _host(raw_host: str) -> tuple[str, Address | None]:
    """(host, its address if it is an IP literal); Refused for anything else but a DNS name."""
    host = raw_host.lower()
    if not host:
        raise Refused("the URL has no host")
    if ":" in host:  # httpx strips the brackets of an IPv6 literal
        if "%" in host:
            raise Refused(f"IPv6 zone ids are refused ({raw_host!r})")
        try:
            return host, ipaddress.IPv6Address(host)
        except ValueError:
            raise Refused(f"{raw_host!r} is not a valid IPv6 address") from None
    name = host.removesuffix(".")
    labels = name.split(".")
    if NUMERIC_LABEL.fullmatch(labels[-1]):
        if not DOTTED_QUAD.fullmatch(name):
            raise Refused(
                f"{raw_host!r} is a non-canonical numeric host (libc would read it as an IP "
                "address); write the address as four decimal numbers"
            )
        return name, ipaddress.IPv4Address(name)
    if not all(DNS_LABEL.fullmatch(label) for label in labels):
        raise Refused(f"{raw_host!r} is not a valid host name")
    return name, None


def _address(value: str, host: str) -> Address:
    try:
        return ipaddress.ip_address(value)
    except ValueError:  # a scoped IPv6 address (fe80::1%eth0) and the like
        raise Refused(f"{host} resolves to {value!r}, which the engine does not call") from None


def fetch(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    content: str | bytes | None = None,
    timeout: float | None = None,
    max_bytes: int | None = None,
    follow_redirects: bool = True,
    context: TaskContext | None = None,
    policy: Policy | None = None,
) -> Fetched:
    """One guarded HTTP exchange, redirects included. `timeout` bounds the whole of it (every
    hop and the body); `max_bytes` the body, capped by OUTBOUND_MAX_RESPONSE_BYTES. Raises
    Refused, ResponseTooLarge, or a transient ClassifiedError (timeout, connection, DNS); the
    status code is the caller's to judge (`status_failure`)."""
    policy = policy or current_policy()
    timeout = timeout or policy.timeout_seconds
    limit = min(max_bytes or policy.max_response_bytes, policy.max_response_bytes)
    started = time.monotonic()
    deadline = started + timeout
    url_now = parse_url(url, params)
    method = method.upper()
    sent_headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    sent_headers.update({k: v for k, v in (headers or {}).items() if k.lower() not in CONTROLLED_HEADERS})
    body: dict[str, Any] = {"json": json} if json is not None else {"content": content}
    origin = None
    with httpx.Client(
        verify=_tls_context(),
        trust_env=False,  # no proxy from the environment: it would resolve names itself
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),  # a connection never serves another name
    ) as client:
        for hop in range(policy.max_redirects + 1):
            target = vet(url_now, policy)
            if origin is not None and target.origin != origin:
                sent_headers = {k: v for k, v in sent_headers.items() if k.lower() in CROSS_ORIGIN_HEADERS}
            origin = target.origin
            response = _send(client, target, method, sent_headers, body, deadline, timeout)
            try:
                location = response.headers.get("location")
                if follow_redirects and response.status_code in REDIRECTS and location:
                    if hop == policy.max_redirects:
                        raise HandlerError(
                            f"more than {policy.max_redirects} redirects (OUTBOUND_MAX_REDIRECTS)",
                            code="too_many_redirects",
                            permanent=True,
                        )
                    try:
                        url_now = url_now.join(location)
                    except (httpx.InvalidURL, ValueError) as exc:
                        raise Refused(f"redirect to an invalid URL: {exc}") from None
                    if response.status_code == 303 or (
                        response.status_code in {301, 302} and method == "POST"
                    ):
                        method, body = ("HEAD" if method == "HEAD" else "GET"), {"content": None}
                        sent_headers = {k: v for k, v in sent_headers.items() if k.lower() != "content-type"}
                    continue
                content_bytes = _read(response, limit, deadline, timeout, context)
                return Fetched(
                    status_code=response.status_code,
                    headers=response.headers,
                    content=content_bytes,
                    url=str(url_now),
                    elapsed_ms=round((time.monotonic() - started) * 1000, 1),
                    charset=response.charset_encoding,
                )
            finally:
                response.close()
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _send(client, target: Target, method, headers, body, deadline, timeout) -> httpx.Response:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timed_out(timeout)
    request = httpx.Request(method, target.url, headers=headers, **body)
    # Host stays the name (set from target.url above); the connection goes to the vetted address.
    request.url = target.connect_url()
    request.extensions["timeout"] = httpx.Timeout(remaining).as_dict()
    if target.url.scheme == "https":
        request.extensions["sni_hostname"] = target.host
    try:
        return client.send(request, stream=True)
    except httpx.TimeoutException:
        raise _timed_out(timeout) from None
    except httpx.TransportError as exc:
        raise ClassifiedError(
            f"{method} {target.host}:{target.port}: {exc or type(exc).__name__}",
            code="connection_error",
            category="transient",
        ) from None


def _read(response: httpx.Response, limit: int, deadline: float, timeout: float, context) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(f"the response declares {declared} bytes, the limit is {limit}")
    chunks, size = [], 0
    try:
        for chunk in response.iter_bytes():  # decompressed: a small gzip bomb stops here too
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(f"the response is larger than the limit of {limit} bytes")
            if time.monotonic() > deadline:
                raise _timed_out(timeout)
            if context is not None:
                context.sleep(0)  # raises Interrupted once the worker stopped this task
            chunks.append(chunk)
    except httpx.TimeoutException:
        raise _timed_out(timeout) from None
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise ClassifiedError(
            f"reading the response failed: {exc}", code="connection_error", category="transient"
        ) from None
    return b"".join(chunks)


def _timed_out(timeout: float) -> ClassifiedError:
    return ClassifiedError(
        f"no complete response within {timeout:g} s", code="http_timeout", category="timeout"
    )


def status_failure(fetched: Fetched, *, method: str, retryable: Collection[int] = ()) -> ClassifiedError:
    """The error for a status the caller did not expect: 429, 5xx and `retryable` ones are
    transient (a Retry-After sets the earliest next attempt), any other is permanent."""
    status = fetched.status_code
    snippet = " ".join(fetched.text()[:200].split())
    message = f"{method} {fetched.url} answered {status}" + (f": {snippet}" if snippet else "")
    code = f"http_{status}"
    if status == 429 or status >= 500 or status in retryable:
        wait = retry_after_seconds(fetched.headers.get("retry-after"))
        if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
            return HandlerError(
                f"{message} (Retry-After {wait:.0f} s is more than the engine waits, {MAX_RETRY_AFTER_SECONDS:.0f} s)",
                code=code,
                permanent=True,
            )
        return ClassifiedError(message, code=code, category="transient", retry_after_seconds=wait)
    return HandlerError(message, code=code, permanent=True)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process (building one loads the CA bundle: milliseconds)."""
    return ssl.create_default_context(cafile=certifi.where())


def _json_loads(text: str) -> Any:
    def refuse_constant(name: str):
        raise ValueError(f"{name} is not JSON the engine can store")

    return jsonlib.loads(text, parse_constant=refuse_constant)
