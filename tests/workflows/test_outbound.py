"""The guarded outbound client against servers on loopback: what it refuses (before any
connection), what it lets through, DNS rebinding, redirects, size limits and timeouts.

127.0.0.2 is the allowlisted "internet" (OUTBOUND_ALLOWLIST); a canary on 127.0.0.1 and ::1,
never allowlisted, counts every connection anyone makes to it. Host names are resolved by a
stand-in for the outside world (outbound.resolve), except `localhost`.
"""

import ipaddress
from urllib.parse import quote, unquote

import httpx
import pytest

from tests.local_servers import Canary, Reply, ScriptedServer
from workflows import outbound
from workflows.handlers import HandlerError

NAMES = {
    "allowed.test": ["127.0.0.2"],
    "evil.test": ["127.0.0.1"],
    "evil6.test": ["::1"],
    "mixed.test": ["93.184.216.34", "127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "public.test": ["93.184.216.34"],
    "intranet.test": ["127.0.0.1"],
}


@pytest.fixture(autouse=True)
def allowlist(settings):
    settings.OUTBOUND_ALLOWLIST = ["127.0.0.2"]
    settings.OUTBOUND_MAX_REDIRECTS = 5


@pytest.fixture
def lookups(monkeypatch) -> list[str]:
    """The names resolved, in order; NAMES stand in for DNS (localhost resolves for real)."""
    asked: list[str] = []
    real = outbound.resolve

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return NAMES[host] if host in NAMES else real(host, port)

    monkeypatch.setattr(outbound, "resolve", resolve)
    return asked


@pytest.fixture
def server():
    """The allowlisted server, on 127.0.0.2."""
    scripted = ScriptedServer("127.0.0.2")
    yield scripted
    scripted.close()


@pytest.fixture
def canary(server):
    """Counts connections to 127.0.0.1 and ::1, on the allowlisted server's port too."""
    counter = Canary(port=server.port)
    yield counter
    counter.close()


def refused(url: str, **kwargs) -> HandlerError:
    with pytest.raises(HandlerError) as caught:
        outbound.fetch("GET", url, **kwargs)
    assert caught.value.code == "ssrf_blocked", (url, caught.value)
    assert caught.value.permanent
    return caught.value


# --- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "::",
        "::1",
        "fe80::1",
        "fd00::1",
        "fc00::1",
        "ff02::1",
        "fec0::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "::8.8.8.8",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::1",
        "2002:7f00:1::1",
        "2002:a9fe:a9fe::1",
        "2001:db8::1",
    ],
)
def test_non_public_addresses_are_refused(address):
    assert outbound.refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34", "64:ff9b::808:808"],
)
def test_public_addresses_are_allowed(address):
    assert outbound.refusal(ipaddress.ip_address(address)) is None


def test_the_metadata_address_is_refused_as_link_local(lookups):
    error = refused("http://169.254.169.254/latest/meta-data/")
    assert "link-local" in str(error)
    error = refused("http://metadata.test/computeMetadata/v1/")
    assert "169.254.169.254" in str(error)


@pytest.mark.parametrize(
    "host", ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001", "017700000001", "127.000.000.001"]
)
def test_numeric_spellings_are_refused_without_a_lookup(host, lookups):
    refused(f"http://{host}/")  # by httpx already, or as a non-canonical numeric host
    assert lookups == []


# --- no connection to anything refused ---------------------------------------------------------


def ssrf_corpus(port: int, redirector: str) -> list[str]:
    """URLs that all lead to the canary (or another address the guard refuses)."""
    direct = [
        f"http://127.0.0.1:{port}/",
        f"http://localhost:{port}/",
        f"http://LOCALHOST:{port}/",
        f"http://localhost.:{port}/",
        f"HTTP://127.0.0.1:{port}/",
        f"hTTp://127.0.0.1:{port}/",
        f"http://127.0.0.1.:{port}/",
        f"http://2130706433:{port}/",
        f"http://0177.0.0.1:{port}/",
        f"http://0177.0000.0000.0001:{port}/",
        f"http://0x7f.0.0.1:{port}/",
        f"http://0x7f000001:{port}/",
        f"http://0x7f.1:{port}/",
        f"http://0x7F.0x00.0x00.0x01:{port}/",
        f"http://127.1:{port}/",
        f"http://127.0.1:{port}/",
        f"http://017700000001:{port}/",
        f"http://127.000.000.001:{port}/",
        f"http://0:{port}/",
        f"http://0.0.0.0:{port}/",
        f"http://[::1]:{port}/",
        f"http://[0:0:0:0:0:0:0:1]:{port}/",
        f"http://[::]:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://[::ffff:7f00:1]:{port}/",
        f"http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/",
        f"http://[::127.0.0.1]:{port}/",
        f"http://[64:ff9b::127.0.0.1]:{port}/",
        f"http://[2002:7f00:1::]:{port}/",
        f"http://[::1%25lo]:{port}/",
        f"http://allowed.test@127.0.0.1:{port}/",
        f"http://allowed.test:pw@127.0.0.1:{port}/",
        f"http://127.0.0.1:{port}@allowed.test/",
        f"http://evil.test:{port}/",
        f"http://evil6.test:{port}/",
        f"http://mixed.test:{port}/",
        f"http://intranet.test.:{port}/",
        f"ftp://127.0.0.1:{port}/",
        f"gopher://127.0.0.1:{port}/_GET%20/",
        f"dict://127.0.0.1:{port}/info",
        f"ws://127.0.0.1:{port}/",
        "file:///etc/passwd",
        f"http:/127.0.0.1:{port}/",
        f"http:\\\\127.0.0.1:{port}\\",
        f"http://127.0.0.1%2e:{port}/",
        f"http://①②⑦.0.0.1:{port}/",
        f"//127.0.0.1:{port}/",
    ]
    through_redirects = [
        f"http://127.0.0.1:{port}/",
        f"http://2130706433:{port}/",
        f"http://[::1]:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"//127.0.0.1:{port}/",
        f"http://localhost:{port}/",
        f"http://evil.test:{port}/",
        f"HTTP://0x7f.1:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "gopher://127.0.0.1/_",
    ]
    redirected = [f"{redirector}?to={quote(target, safe='')}" for target in through_redirects]
    return [*direct, *redirected, f"{redirector}-twice"]


def test_no_url_of_the_ssrf_corpus_reaches_the_canary(server, canary, lookups):
    def redirect(hit):
        target = unquote(hit.path.split("?to=", 1)[1])
        return Reply(307 if "localhost" in target else 302, headers={"Location": target})

    server.route("/redirect", redirect)
    canary_url = quote(f"http://127.0.0.1:{canary.port}/", safe="")
    server.route(
        "/redirect-twice", Reply(301, headers={"Location": server.url(f"/redirect?to={canary_url}")})
    )
    corpus = ssrf_corpus(canary.port, server.url("/redirect"))
    assert len(corpus) >= 40

    for url in corpus:
        refused(url)

    assert canary.connections == 0
    assert len(server.hits_on("/redirect")) == 11  # every redirect was followed up to the refusal


def test_dns_rebinding_cannot_move_the_connection(server, canary, monkeypatch):
    """The name resolves once: to the allowlisted address, then (too late) to the canary's."""
    answers = [["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"]]
    asked = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[len(asked) - 1]

    monkeypatch.setattr(outbound, "resolve", rebinding)
    server.route("/data", Reply(body={"ok": True}))

    fetched = outbound.fetch("GET", f"http://rebind.test:{server.port}/data")

    assert fetched.status_code == 200 and fetched.data() == {"ok": True}
    assert asked == ["rebind.test"]
    [hit] = server.hits_on("/data")
    assert hit.headers["Host"] == f"rebind.test:{server.port}"
    assert canary.connections == 0


def test_the_connection_goes_to_the_vetted_address_with_the_name_as_host_and_sni(monkeypatch, lookups):
    sent = []

    def send(client, request, **kwargs):
        sent.append(request)
        return httpx.Response(
            200, content=b"{}", headers={"Content-Type": "application/json"}, request=request
        )

    monkeypatch.setattr(httpx.Client, "send", send)

    outbound.fetch("GET", "https://public.test/items?page=2", params={"size": 10})

    [request] = sent
    assert request.url.host == "93.184.216.34" and request.url.scheme == "https"
    assert request.url.raw_path == b"/items?page=2&size=10"
    assert request.headers["Host"] == "public.test"
    assert request.extensions["sni_hostname"] == "public.test"


# --- what is let through -----------------------------------------------------------------------


def test_an_allowlisted_address_is_called(server):
    server.route("/hello", Reply(body="hello"))

    fetched = outbound.fetch("GET", server.url("/hello"))

    assert (fetched.status_code, fetched.data()) == (200, "hello")
    assert fetched.url == server.url("/hello")


def test_an_allowlisted_name_opens_that_name_only(settings, lookups):
    local = ScriptedServer("127.0.0.1")
    try:
        local.route("/x", Reply(body={"via": "name"}))
        settings.OUTBOUND_ALLOWLIST = ["intranet.test"]

        assert outbound.fetch("GET", f"http://intranet.test:{local.port}/x").data() == {"via": "name"}
        refused(f"http://evil.test:{local.port}/x")  # same address, another name
        refused(f"http://127.0.0.1:{local.port}/x")
        assert len(local.hits) == 1
    finally:
        local.close()


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("api.internal", "names"),
        ("*.corp.example", "suffixes"),
        ("10.0.0.0/8", "networks"),
        ("[::1]", "networks"),
    ],
)
def test_allowlist_entries(entry, expected):
    assert getattr(outbound.Allowlist.parse([entry]), expected)


@pytest.mark.parametrize("entry", ["http://x", "0x7f.1", "a b", "-bad.example"])
def test_a_bad_allowlist_entry_is_refused(entry):
    with pytest.raises(ValueError, match="is not a host name"):
        outbound.Allowlist.parse([entry])


def test_redirects_are_followed_and_credentials_stay_with_their_origin(settings, server):
    other = ScriptedServer("127.0.0.3")
    try:
        settings.OUTBOUND_ALLOWLIST = ["127.0.0.2", "127.0.0.3"]
        other.route("/end", Reply(body={"done": True}))
        server.route("/start", Reply(302, headers={"Location": "/same-origin"}))
        server.route("/same-origin", Reply(303, headers={"Location": other.url("/end")}))

        fetched = outbound.fetch(
            "POST",
            server.url("/start"),
            json={"a": 1},
            headers={"Authorization": "Bearer t0ken", "Idempotency-Key": "k1", "X-Api-Key": "abc"},
        )

        assert fetched.data() == {"done": True}
        assert fetched.url == other.url("/end")
        [first] = server.hits_on("/start")
        [second] = server.hits_on("/same-origin")
        [last] = other.hits_on("/end")
        assert first.method == "POST" and first.body == b'{"a":1}'
        assert second.method == "GET" and second.body == b""  # 302 after a POST: a GET
        assert second.headers["Authorization"] == "Bearer t0ken"
        assert last.method == "GET"
        assert "Authorization" not in last.headers and "X-Api-Key" not in last.headers
        assert last.headers["Idempotency-Key"] == "k1"
    finally:
        other.close()


def test_too_many_redirects_fail_for_good(settings, server):
    settings.OUTBOUND_MAX_REDIRECTS = 2
    server.route("/loop", Reply(302, headers={"Location": "/loop"}))

    with pytest.raises(HandlerError) as caught:
        outbound.fetch("GET", server.url("/loop"))

    assert caught.value.code == "too_many_redirects" and caught.value.permanent
    assert len(server.hits_on("/loop")) == 3


# --- limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("undeclared", [False, True], ids=["content-length", "streamed"])
def test_a_response_over_the_size_limit_stops_there(server, undeclared):
    server.route("/big", Reply(body=b"x" * 50_000, undeclared=undeclared))

    with pytest.raises(HandlerError) as caught:
        outbound.fetch("GET", server.url("/big"), max_bytes=10_000)

    assert caught.value.code == "response_too_large" and caught.value.permanent


def test_the_size_limit_of_a_call_cannot_pass_the_operators(settings, server):
    settings.OUTBOUND_MAX_RESPONSE_BYTES = 1000
    server.route("/big", Reply(body=b"x" * 5000))

    with pytest.raises(HandlerError, match="limit is 1000"):
        outbound.fetch("GET", server.url("/big"), max_bytes=10**9)


def test_a_server_that_does_not_answer_in_time_is_a_timeout(server):
    server.route("/slow", Reply(body="late", delay=2.0))

    with pytest.raises(Exception) as caught:
        outbound.fetch("GET", server.url("/slow"), timeout=0.3)

    assert (caught.value.code, caught.value.category) == ("http_timeout", "timeout")


def test_a_closed_port_is_a_transient_connection_error(server):
    port = server.port
    server.close()

    with pytest.raises(Exception) as caught:
        outbound.fetch("GET", f"http://127.0.0.2:{port}/")

    assert (caught.value.code, caught.value.category) == ("connection_error", "transient")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (" 5 ", 5.0), ("", None), (None, None), ("soon", None), ("-3", None)],
)
def test_retry_after_in_seconds(value, expected):
    assert outbound.retry_after_seconds(value) == expected


def test_retry_after_as_an_http_date():
    assert outbound.retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    assert outbound.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412510.0) == 0.0
