"""Callback URLs are judged by what they reach, not by how they are written: every spelling of a
loopback, private, link-local or otherwise non-public address is refused, by the rule itself
(jobrelay.domain.callback_targets) and by the API that takes callback URLs (POST /jobs, POST and
PATCH /schedules answer 422 naming `callback_url`)."""

import ipaddress
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobrelay.domain.callback_targets import CallbackTargetRefused, classify, parse_callback_url

METADATA = "169.254.169.254"

# The cloud metadata service, as the issue wrote it: refused however it is spelled.
METADATA_SPELLINGS = [
    "169.254.169.254",
    "[::ffff:169.254.169.254]",  # IPv4-mapped IPv6
    "[::ffff:a9fe:a9fe]",  # the same, in hex
    "2852039166",  # one decimal number
    "0xa9fea9fe",  # one hex number
    "0251.0376.0251.0376",  # octal parts
    "169.254.43518",  # the last part fills two bytes
    "0xa9.0376.43518",  # mixed bases
    "[64:ff9b::a9fe:a9fe]",  # NAT64's well-known prefix: a translator forwards it to 169.254.169.254
    "169.254.169.254.",  # a trailing dot
]

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "0177.0.0.1",
    "127.1",
    "0x7f.1",
    "127.0.0.1.",
    "%31%32%37.0.0.1",  # percent-encoded
    "\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11",  # full-width digits and dots
    "127\u30020\u30020\u30021",  # ideographic full stops
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "localhost",
    "LOCALHOST.",
    "api.localhost",
]

PRIVATE_SPELLINGS = [
    "10.0.0.1",
    "167772161",  # 10.0.0.1
    "012.0.0.1",  # octal 10.0.0.1
    "172.16.5.4",
    "192.168.1.1",
    "0xc0a80101",  # 192.168.1.1
    "192.168.257",  # 192.168.1.1
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "[fd00::1]",
    "[::ffff:10.0.0.1]",
]

# Never a callback target, whatever the stack allows.
ALWAYS_REFUSED = [
    "0.0.0.0",
    "0",
    "0.1.2.3",
    "[::]",
    "[fe80::1]",
    "224.0.0.1",  # multicast (ipaddress calls most of it global)
    "[ff0e::1]",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "[2001:db8::1]",
    "[fec0::1]",  # site-local (ipaddress calls it global)
    "[2002:a9fe:a9fe::1]",  # 6to4 (deprecated)
    "[::169.254.169.254]",  # IPv4-compatible (deprecated)
    *METADATA_SPELLINGS,
]


@pytest.mark.parametrize("host", METADATA_SPELLINGS)
def test_every_spelling_of_the_metadata_address_is_refused_and_named(host):
    with pytest.raises(CallbackTargetRefused) as refused:
        parse_callback_url(f"https://{host}/latest/meta-data", allow_local=False)
    assert METADATA in str(refused.value) and "link-local" in str(refused.value)


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS + PRIVATE_SPELLINGS)
def test_loopback_and_private_targets_are_refused_unless_the_stack_allows_local_callbacks(host):
    with pytest.raises(CallbackTargetRefused, match="loopback|private"):
        parse_callback_url(f"https://{host}:8443/cb", allow_local=False)
    target = parse_callback_url(f"https://{host}:8443/cb", allow_local=True)
    if target.address is not None:  # judged, and connected to, as the address it is
        assert not target.address.is_global and target.port == 8443


@pytest.mark.parametrize("host", ALWAYS_REFUSED)
def test_link_local_multicast_unspecified_and_reserved_targets_are_refused_even_where_local_ones_are_allowed(host):
    with pytest.raises(CallbackTargetRefused):
        parse_callback_url(f"https://{host}/cb", allow_local=True)


@pytest.mark.parametrize(
    ("url", "host", "host_header"),
    [
        ("https://hooks.example.org/cb", "hooks.example.org", "hooks.example.org"),
        ("https://Hooks.Example.ORG./cb", "hooks.example.org", "hooks.example.org"),
        ("https://hooks.example.org:8443/cb", "hooks.example.org", "hooks.example.org:8443"),
        ("https://b\u00fccher.example/cb", "xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("https://fa\u00df.example/cb", "xn--fa-hia.example", "xn--fa-hia.example"),  # not "fass": as browsers
        ("https://8.8.8.8/cb", "8.8.8.8", "8.8.8.8"),
        ("https://134744072/cb", "8.8.8.8", "8.8.8.8"),  # a public address in one number is that address
        ("https://[2001:4860:4860::8888]:444/cb", "2001:4860:4860::8888", "[2001:4860:4860::8888]:444"),
        ("https://[::ffff:8.8.8.8]/cb", "8.8.8.8", "8.8.8.8"),
        ("https://[64:ff9b::808:808]/cb", "64:ff9b::808:808", "[64:ff9b::808:808]"),  # NAT64 to a public address
    ],
)
def test_public_targets_are_accepted_and_normalised(url, host, host_header):
    target = parse_callback_url(url, allow_local=False)
    assert (target.host, target.host_header, target.target) == (host, host_header, "/cb")


def test_a_name_is_kept_for_delivery_and_an_address_is_connected_to_as_checked():
    named = parse_callback_url("https://hooks.example.org/cb?job=1", allow_local=False)
    assert named.address is None and named.target == "/cb?job=1"
    assert named.url_for(ipaddress.ip_address("2001:db8::5")) == "https://[2001:db8::5]:443/cb?job=1"

    mapped = parse_callback_url("http://[::ffff:127.0.0.1]:9000", allow_local=True)
    assert mapped.address == ipaddress.IPv4Address("127.0.0.1")  # the IPv4 address it reaches
    assert mapped.url_for(mapped.address) == "http://127.0.0.1:9000/"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.org/cb", "must use https"),
        ("ftp://hooks.example.org/cb", "absolute https URL"),
        ("hooks.example.org/cb", "absolute https URL"),
        ("https:///cb", "absolute https URL"),
        ("https://user:secret@hooks.example.org/cb", "user name or password"),
        ("https://hooks.example.org@10.0.0.1/cb", "user name or password"),
        ("https://[fe80::1%25eth0]/cb", "zone"),
        ("https://[v1.anything]/cb", "not a valid IPv6 address"),
        ("https://[2001:4860:4860::8888]evil/cb", "not a valid IPv6 address"),
        ("https://hooks.example.org:0/cb", "port"),
        ("https://hooks.example.org:70000/cb", "not a valid URL"),
        ("https://1.2.3.08/cb", "not a valid IPv4 address"),  # 8 is no octal digit
        ("https://1.2.3.4.5/cb", "not a valid IPv4 address"),
        ("https://256.1.1.1/cb", "not a valid IPv4 address"),
        ("https://1.2.3.256/cb", "not a valid IPv4 address"),
        ("https://4294967296/cb", "not a valid IPv4 address"),
        ("https://hooks.example.0x/cb", "not a valid IPv4 address"),  # ends in a number: an address or nothing
        ("https://hooks example.org/cb", "not a valid host name"),
        ("https://hooks..example.org/cb", "not a valid host name"),
        ("https://%00hooks.example.org/cb", "not a valid host name"),
        (f"https://{'a' * 64}.example.org/cb", "not a valid host name"),
    ],
)
def test_urls_that_are_not_a_public_https_target_are_refused_saying_why(url, message):
    with pytest.raises(CallbackTargetRefused, match=message):
        parse_callback_url(url, allow_local=False)


def test_plain_http_is_accepted_only_where_the_stack_allows_local_callbacks():
    assert parse_callback_url("http://127.0.0.1:3000/cb", allow_local=True).scheme == "http"
    assert parse_callback_url("http://hooks.example.org/cb", allow_local=True).port == 80


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("233.252.0.1", "multicast"),
        ("ff0e::1", "multicast"),
        ("fec0::1", "special use"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a00:1", "private"),
        ("64:ff9b:1::a00:1", "special use"),  # local-use NAT64: where it leads is the site's own business
        ("2001::1", "special use"),  # Teredo
        ("fe80::1%eth0", "link-local"),
    ],
)
def test_addresses_are_classified_past_the_gaps_of_is_global(address, kind):
    refusal = classify(ipaddress.ip_address(address))
    assert (refusal is None) if kind is None else (kind in refusal.what)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.sampled_from(["dec", "hex", "oct", "two", "three"]))
def test_every_ipv4_form_a_resolver_reads_is_judged_as_its_address(value, form):
    address = ipaddress.IPv4Address(value)
    a, b, c, d = address.packed
    written = {
        "dec": str(value),
        "hex": hex(value),
        "oct": ".".join(f"0{part:o}" for part in (a, b, c, d)),
        "two": f"{a}.{value & 0xFFFFFF}",
        "three": f"{a}.{b}.{value & 0xFFFF}",
    }[form]
    try:
        target = parse_callback_url(f"https://{written}/", allow_local=True)
    except CallbackTargetRefused as refused:
        assert classify(address) is not None, refused  # refused only for what the address is
    else:
        assert target.address == address


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_no_host_whatsoever_breaks_the_check(host):
    try:
        parse_callback_url(f"https://{host}/cb", allow_local=False)
    except CallbackTargetRefused:
        pass  # a refusal with its reason, never another exception (which the API would answer with a 500)


# --- the API: the same rule, answered 422 with our error shape ----------------------------------


def _api(method: str, path: str, route: str, body: dict) -> tuple[int, dict]:
    """The API's routes, for bodies refused before any service is reached (no AWS needed)."""
    from jobrelay.api.routes import app

    event = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": path}, "routeKey": f"{method} {route}", "stage": "$default"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
    answer = app.resolve(event, None)
    return answer["statusCode"], json.loads(answer["body"])


SUBMISSION = {"operation": "pinpointe.list_subscribers", "params": {"list": ["1"]}}
SCHEDULE = {**SUBMISSION, "name": "nightly", "cron": "0 2 * * ? *"}


@pytest.mark.parametrize(
    "host", [*METADATA_SPELLINGS, "2130706433", "0x7f000001", "127.1", "10.0.0.1", "192.168.1.1", "localhost."]
)
@pytest.mark.parametrize(
    ("method", "path", "route", "body"),
    [
        ("POST", "/jobs", "/jobs", SUBMISSION),
        ("POST", "/schedules", "/schedules", SCHEDULE),
        ("PATCH", "/schedules/nightly", "/schedules/{name}", {}),
    ],
    ids=["submit", "create-schedule", "change-schedule"],
)
def test_the_api_refuses_every_spelling_with_a_422_naming_callback_url(monkeypatch, host, method, path, route, body):
    monkeypatch.delenv("ALLOW_LOCAL_CALLBACKS", raising=False)  # a deployed stack
    status, answer = _api(method, path, route, {**body, "callback_url": f"https://{host}/cb"})

    assert status == 422 and answer["error"]["code"] == "INVALID_REQUEST"
    (detail,) = [d for d in answer["error"]["details"] if d["field"] == "body.callback_url"]
    assert "callback_url may not point at" in detail["message"]


def test_the_api_accepts_plain_http_to_this_machine_only_in_a_stack_that_allows_local_callbacks(monkeypatch):
    # A timeout the body model refuses keeps the request from reaching any service either way.
    body = {**SUBMISSION, "timeout_seconds": 0, "callback_url": "http://127.0.0.1:3000/cb"}
    monkeypatch.delenv("ALLOW_LOCAL_CALLBACKS", raising=False)
    _, refused = _api("POST", "/jobs", "/jobs", body)
    assert {"body.callback_url", "body.timeout_seconds"} <= {d["field"] for d in refused["error"]["details"]}

    monkeypatch.setenv("ALLOW_LOCAL_CALLBACKS", "true")  # the local stack
    _, answer = _api("POST", "/jobs", "/jobs", body)
    assert {d["field"] for d in answer["error"]["details"]} == {"body.timeout_seconds"}
