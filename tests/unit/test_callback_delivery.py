"""Delivering a callback (jobrelay.services.notices): a name is resolved once, every address it
resolves to is checked, and the connection goes to a checked address with the name in the Host
header and as TLS's server name, the certificate verified for it. A target refused at delivery is
given up at once, with its reason on the job's timeline."""

import datetime as dt
import http.server
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jobrelay.api.models import JobSubmission
from jobrelay.domain.callback_targets import CallbackTargetRefused
from jobrelay.domain.errors import CallbackDeliveryError
from jobrelay.drivers.base import DriverContext
from jobrelay.drivers.directory import Drivers
from jobrelay.services.notices import Notices, resolve_host
from jobrelay.services.steps import StepInput, StepRunner
from jobrelay.telemetry import MemorySink, Metrics
from tests.fakes import InMemorySecretStore

NAME = "hooks.example.test"  # .test never resolves (RFC 6761): only the injected resolver knows it
SIGNING = {"signing_secret": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


@dataclass
class Resolver:
    """Answers a lookup from a table, and remembers every lookup."""

    answers: dict[str, list[str]]
    asked: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        self.asked.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in self.answers[host]]


def nothing_sent(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"nothing may be sent, yet {request.url} was")


def notices(world, resolver: Resolver, *, allow_local: bool, http: httpx.Client | None = None) -> Notices:
    settings = world.settings.model_copy(update={"allow_local_callbacks": allow_local})
    secrets = InMemorySecretStore({settings.callback_secret_name("default"): SIGNING})
    return Notices(world.events, secrets, settings, http_client=http, resolver=resolver)


def ended_job(world, callback_url: str):
    """A job that failed, with `callback_url` taken as stored: some of these the API refuses today,
    as a job stored before the rule may hold them. (Failed by its step, which calls nobody back.)"""
    submission = JobSubmission.model_construct(
        operation="pinpointe.list_subscribers", params={"list": ["1"]}, callback_url=callback_url
    )
    job_id = world.jobs.submit(submission).job_id
    error = {"Error": "VendorJobFailed", "Cause": json.dumps({"errorMessage": "it broke"})}
    assert world.steps.run(StepInput(step="fail", job_id=job_id, error=error)).next == "notify"
    return world.store.get(job_id)


# --- a name that resolves somewhere callbacks may not go ------------------------------------------


@pytest.mark.parametrize(
    ("addresses", "what"),
    [
        (["10.0.0.5"], "a private address"),
        (["192.168.1.20"], "a private address"),
        (["169.254.169.254"], "a link-local address"),
        (["127.0.0.1"], "a loopback address"),
        (["::ffff:169.254.169.254"], "a link-local address"),
        (["fd12:3456::1"], "a private address"),
        (["93.184.215.14", "10.0.0.5"], "a private address"),  # one bad address among good ones
    ],
)
def test_a_name_that_resolves_to_a_refused_address_at_delivery_is_refused_without_a_request(world, addresses, what):
    job = ended_job(world, f"https://{NAME}/cb")
    resolver = Resolver({NAME: addresses})
    sender = notices(world, resolver, allow_local=False, http=httpx.Client(transport=httpx.MockTransport(nothing_sent)))

    with pytest.raises(CallbackTargetRefused) as refused:
        sender.deliver_callback(job)

    message = str(refused.value)
    assert message.startswith(f"callback host {NAME} resolves to {what}")
    assert not any(address in message for address in addresses)  # what our resolver says stays ours
    assert resolver.asked == [(NAME, 443)]


def test_an_address_stored_before_the_rule_is_refused_at_delivery_too(world):
    job = ended_job(world, "https://[::ffff:a9fe:a9fe]/latest/meta-data")
    sender = notices(world, Resolver({}), allow_local=True, http=httpx.Client(transport=httpx.MockTransport(nothing_sent)))

    with pytest.raises(CallbackTargetRefused, match="169.254.169.254, a link-local address"):
        sender.deliver_callback(job)


def test_a_name_that_does_not_resolve_is_a_delivery_failure_that_is_retried(world):
    job = ended_job(world, "https://nowhere.example.test/cb")
    sender = notices(world, Resolver({}), allow_local=False)

    with pytest.raises(CallbackDeliveryError, match="could not be resolved") as failed:
        sender.deliver_callback(job)
    assert not isinstance(failed.value, CallbackTargetRefused)


def test_the_notify_step_gives_a_refused_target_up_at_once_with_its_reason(world):
    """Not raised for the state machine to retry four times: recorded, counted, done."""
    job = ended_job(world, f"https://{NAME}/cb")
    sink = MemorySink()
    sender = notices(world, Resolver({NAME: ["10.1.2.3"]}), allow_local=False)
    drivers = Drivers(lambda job: world.vendor, DriverContext(world.store, world.results, world.settings, now=world.clock))
    steps = StepRunner(
        world.store, world.workflow, sender, drivers.for_job, world.settings, now=world.clock, metrics=Metrics(sink)
    )

    out = steps.run(StepInput(step="notify", job_id=job.job_id))

    assert out.next == "done"
    last = world.store.timeline(job.job_id)[-1]
    assert (last.event, last.detail) == (
        "callback_failed",
        {"reason": f"callback host {NAME} resolves to a private address; callbacks go to public addresses only"},
    )
    assert [r.dimensions for r in sink.named("Callbacks")] == [{"outcome": "given_up"}]


# --- where the connection goes ----------------------------------------------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections open, as most servers do
    received: list[dict]

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.received.append({"path": self.path, "headers": headers, "body": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def listener() -> Iterator[http.server.ThreadingHTTPServer]:
    """A callback receiver on 127.0.0.1 only (as the local stack's listeners are)."""
    handler = type("Handler", (Recorder,), {"received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_delivery_connects_to_the_checked_address_with_the_name_in_the_host_header(world, listener):
    port = listener.server_address[1]
    job = ended_job(world, f"http://{NAME}:{port}/jobrelay-callback?token=1")
    resolver = Resolver({NAME: ["127.0.0.1"]})

    status = notices(world, resolver, allow_local=True).deliver_callback(job)

    assert status == 204 and resolver.asked == [(NAME, port)]  # resolved once, by us
    (delivery,) = listener.RequestHandlerClass.received
    assert delivery["path"] == "/jobrelay-callback?token=1"
    assert delivery["headers"]["host"] == f"{NAME}:{port}"
    assert delivery["headers"]["webhook-id"] == f"{job.job_id}:FAILED" and delivery["body"]["job_id"] == job.job_id


def test_a_name_whose_first_address_takes_no_connection_is_reached_at_the_next(world, listener):
    port = listener.server_address[1]
    job = ended_job(world, f"http://{NAME}:{port}/cb")
    resolver = Resolver({NAME: ["127.0.0.2", "127.0.0.1"]})  # nothing listens on 127.0.0.2

    assert notices(world, resolver, allow_local=True).deliver_callback(job) == 204
    assert len(listener.RequestHandlerClass.received) == 1


# --- TLS: the server name and the certificate are the name's, not the address's ---------------------


@dataclass(frozen=True)
class Authority:
    """A certificate authority made for the test, and what it issued to the listener."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def make_authority(*issued_to: str) -> Authority:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jobrelay test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )  # digital signature, certificate and CRL signing
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issued_to[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in issued_to]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Authority(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


@pytest.fixture
def tls_listener(tmp_path, listener):
    """`listener` behind TLS with a certificate for the names `issued_to`; records the server names
    asked for, one per handshake."""

    def serve(*issued_to: str) -> tuple[Authority, list[str | None]]:
        authority = make_authority(*issued_to)
        (tmp_path / "cert.pem").write_bytes(authority.cert_pem + authority.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp_path / "cert.pem")
        server_names: list[str | None] = []
        context.sni_callback = lambda sock, name, ctx: server_names.append(name)
        listener.socket = context.wrap_socket(listener.socket, server_side=True)
        return authority, server_names

    return serve


def trusting(authority: Authority) -> httpx.Client:
    """A client that trusts the test's authority alone, verifying as httpx does by default."""
    return httpx.Client(verify=ssl.create_default_context(cadata=authority.ca_pem.decode()), trust_env=False)


def test_tls_goes_to_the_checked_address_with_the_name_as_server_name_and_certificate(world, listener, tls_listener):
    authority, server_names = tls_listener(NAME)
    port = listener.server_address[1]
    job = ended_job(world, f"https://{NAME}:{port}/cb")

    sender = notices(world, Resolver({NAME: ["127.0.0.1"]}), allow_local=True, http=trusting(authority))

    # The certificate names NAME only, not 127.0.0.1: verifying it for the address would fail.
    assert sender.deliver_callback(job) == 204
    assert server_names == [NAME]
    (delivery,) = listener.RequestHandlerClass.received
    assert delivery["headers"]["host"] == f"{NAME}:{port}"


def test_two_names_on_one_address_never_share_a_connection(world, listener, tls_listener):
    """A kept-open connection would carry the second name's callback without a handshake for it."""
    other = "other-hooks.example.test"
    authority, server_names = tls_listener(NAME, other)
    port = listener.server_address[1]
    sender = notices(world, Resolver({NAME: ["127.0.0.1"], other: ["127.0.0.1"]}), allow_local=True, http=trusting(authority))

    for name in (NAME, other):
        assert sender.deliver_callback(ended_job(world, f"https://{name}:{port}/cb")) == 204

    assert server_names == [NAME, other]
    assert [d["headers"]["host"] for d in listener.RequestHandlerClass.received] == [f"{NAME}:{port}", f"{other}:{port}"]


def test_a_certificate_for_another_name_is_not_accepted(world, listener, tls_listener):
    authority, server_names = tls_listener("someone-else.example.test")
    port = listener.server_address[1]
    job = ended_job(world, f"https://{NAME}:{port}/cb")

    sender = notices(world, Resolver({NAME: ["127.0.0.1"]}), allow_local=True, http=trusting(authority))

    with pytest.raises(CallbackDeliveryError, match="ConnectError"):
        sender.deliver_callback(job)
    assert server_names == [NAME] and listener.RequestHandlerClass.received == []


def test_the_system_resolver_answers_addresses_once_each():
    addresses = resolve_host("localhost", 443)
    assert addresses and len(set(addresses)) == len(addresses)
    assert all(address.is_loopback for address in addresses)
