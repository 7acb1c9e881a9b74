"""Where a callback URL leads, judged by what it reaches rather than how it is written.

A callback is a request our functions make from inside our network to a URL a client chose, so
the URL must not reach anything that only our network can: loopback, private and link-local
addresses (the cloud metadata service), and the rest that is not globally routable. Hosts are
normalised first, so every spelling of an address is judged as that address: every IPv4 form a
resolver's inet_aton reads (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`, `169.254.43518`),
IPv4-mapped IPv6 (`[::ffff:169.254.169.254]`), NAT64 (`[64:ff9b::a9fe:a9fe]`), percent-encoded,
upper case, full-width and IDNA hosts, and a trailing dot.

Names are judged here only for what they say (`localhost`); what a name resolves to is judged at
delivery (jobrelay.services.notices), which connects to the very address it checked.

`allow_local` (the stack setting AllowLocalCallbacks: the local stack sets it, deployed stacks do
not) lets plain http through and loopback and private targets; never link-local, multicast,
unspecified or reserved ones. Pure logic: no I/O.
"""

import ipaddress
import string
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"https": 443, "http": 80}
MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
_NAME_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + "-_")
_DECIMAL = frozenset(string.digits)
_OCTAL = frozenset(string.octdigits)
_HEX = frozenset(string.digits + "abcdef")

# RFC 6052's well-known NAT64 prefix: a translator (AWS NAT gateways are ones) forwards
# 64:ff9b::a.b.c.d to the IPv4 address a.b.c.d, so such an address is judged as that one.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Deprecated IPv4-compatible addresses (RFC 4291 2.5.5.1): ::a.b.c.d, apart from :: and ::1.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Private-use networks (RFC 1918, RFC 6598 shared address space, RFC 4193 unique local).
_PRIVATE = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
    ipaddress.IPv4Network("100.64.0.0/10"),
    ipaddress.IPv6Network("fc00::/7"),
)
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")  # "this host on this network": Linux connects it to loopback


class CallbackTargetRefused(ValueError):
    """A callback URL that must not be called, and why, in words fit for the client that gave it.
    No retry changes that: the delivery gives up at once. A ValueError, so pydantic turns it into
    a 422 naming `callback_url` where the API reads one."""


@dataclass(frozen=True)
class Refusal:
    """Why an address is refused; `local` ones are accepted where the stack allows local callbacks."""

    what: str
    local: bool = False


LOOPBACK = Refusal("a loopback address", local=True)
PRIVATE = Refusal("a private address", local=True)
LINK_LOCAL = Refusal("a link-local address (where the cloud metadata service lives)")
UNSPECIFIED = Refusal("an unspecified address")
MULTICAST = Refusal("a multicast address")
NOT_GLOBAL = Refusal("an address reserved for special use, not reachable on the internet")
IPV4_COMPATIBLE = Refusal("a deprecated IPv4-compatible IPv6 address")


@dataclass(frozen=True)
class CallbackTarget:
    """A callback URL taken apart and normalised: `host` is the name in lower-case ASCII without a
    trailing dot, or the address in its standard form; `address` is set when the URL names an
    address (then it is the one to connect to: an IPv4-mapped address is its IPv4 address)."""

    scheme: str
    host: str
    address: IPAddress | None
    port: int
    target: str  # the path and query, as written ("/" when empty)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def url_for(self, address: IPAddress) -> str:
        """The URL that reaches this target at `address`: the name is replaced by the address that
        was checked, so nothing resolves it again between the check and the connection."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.target}"


def parse_callback_url(url: str, *, allow_local: bool) -> CallbackTarget:
    """The target of `url`, or CallbackTargetRefused saying what is wrong with it: not an absolute
    http(s) URL, plain http where local callbacks are not allowed, a user name or password (they
    would be stored with the job and shown with it), a host that is no valid name or address, a
    refused address however it is written, or `localhost`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackTargetRefused(f"callback_url is not a valid URL: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.netloc:
        raise CallbackTargetRefused("callback_url must be an absolute https URL")
    if parts.scheme == "http" and not allow_local:
        raise CallbackTargetRefused("callback_url must use https (plain http is accepted only by a local stack)")
    if "@" in parts.netloc:
        raise CallbackTargetRefused(
            "callback_url may not carry a user name or password: they would be stored and shown with the job"
        )
    if port == 0:
        raise CallbackTargetRefused("callback_url's port must be from 1 to 65535")
    written = parts.hostname or ""
    if parts.netloc.startswith("["):
        after = parts.netloc.partition("]")[2]
        if after and not after.startswith(":"):  # nothing but a port may follow the address
            raise CallbackTargetRefused("callback_url's host is not a valid IPv6 address in brackets")
        address: IPAddress | None = _bracketed_address(written)
        host = str(address)
    else:
        host = normalise_host(written)
        address = _ipv4(host) if ends_in_a_number(host) else None
        if address is not None:
            host = str(address)
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    if address is None:
        check_name(host, allow_local=allow_local)
        return CallbackTarget(parts.scheme, host, None, port or DEFAULT_PORTS[parts.scheme], target)
    refusal = refusal_of(address, allow_local=allow_local)
    if refusal is not None:
        reached = reached_address(address)
        what = f"it is {refusal.what}" if _spells(written, reached) else f"that is {reached}, {refusal.what}"
        raise CallbackTargetRefused(f"callback_url may not point at {written}: {what}{_why(refusal)}")
    address = connectable(address)
    return CallbackTarget(parts.scheme, str(address), address, port or DEFAULT_PORTS[parts.scheme], target)


def check_name(name: str, *, allow_local: bool) -> None:
    """Refuse the names that always mean this machine (RFC 6761: `localhost` and below it). Other
    names are judged by the addresses they resolve to, at delivery."""
    if (name == "localhost" or name.endswith(".localhost")) and not allow_local:
        raise CallbackTargetRefused(f"callback_url may not point at {name}: it is {LOOPBACK.what}{_why(LOOPBACK)}")


def refusal_of(address: IPAddress, *, allow_local: bool) -> Refusal | None:
    """Why a callback may not connect to `address`, or None when it may."""
    refusal = classify(address)
    if refusal is None or (refusal.local and allow_local):
        return None
    return refusal


def classify(address: IPAddress) -> Refusal | None:
    """What kind of address this is, when it is not a public unicast one. `ipaddress`'s is_global
    is the base, with its gaps filled: it calls multicast, site-local (fec0::/10) and IPv4 addresses
    inside IPv6 (mapped, compatible, NAT64) global; those are judged by what they reach."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:  # only a non-global address has a zone: judge the address alone
            address = ipaddress.IPv6Address(address.compressed.split("%")[0])
        reached = reached_address(address)
        if reached is not address:
            return classify(reached)
        if address in _IPV4_COMPATIBLE and int(address) > 1:
            return IPV4_COMPATIBLE
    if address.is_unspecified or address in _THIS_NETWORK:
        return UNSPECIFIED
    if address.is_loopback:
        return LOOPBACK
    if address.is_link_local:
        return LINK_LOCAL
    if address.is_multicast:
        return MULTICAST
    if any(address in network for network in _PRIVATE):
        return PRIVATE
    if address.is_reserved or not address.is_global or getattr(address, "is_site_local", False):
        return NOT_GLOBAL
    return None


def reached_address(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one leads to when it embeds one (mapped, NAT64); else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or _nat64_embedded(address) or address
    return address


def connectable(address: IPAddress) -> IPAddress:
    """The address to connect to: an IPv4-mapped IPv6 address is its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def normalise_host(written: str) -> str:
    """A host as resolvers and TLS see it: percent-decoded, mapped per UTS 46 (full-width forms,
    ideographic full stops, case) and IDNA-encoded, lower case, one trailing dot dropped; refused
    when it is no valid host name or IPv4 form."""
    host = unquote(written)
    if not host.isascii():
        import idna  # httpx's own dependency; loaded only for the rare non-ASCII host

        try:
            host = idna.uts46_remap(host, std3_rules=False, transitional=False)
            host = ".".join(label if label.isascii() else idna.alabel(label).decode("ascii") for label in host.split("."))
        except (idna.IDNAError, UnicodeError) as exc:
            raise CallbackTargetRefused(f"callback_url's host {written!r} is not a valid host name: {exc}") from None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if ends_in_a_number(host):
        return host
    labels = host.split(".")
    if len(host) > MAX_NAME_LENGTH or not all(
        0 < len(label) <= MAX_LABEL_LENGTH and set(label) <= _NAME_CHARACTERS for label in labels
    ):
        raise CallbackTargetRefused(f"callback_url's host {written!r} is not a valid host name")
    return host


def ends_in_a_number(host: str) -> bool:
    """Whether a resolver would read `host` as an IPv4 address (the URL Standard's test): its last
    label is decimal digits or 0x and hex digits. No top-level domain looks like that, so such a
    host is an address or nothing."""
    last = host.split(".")[-1]
    if last and set(last) <= _DECIMAL:
        return True
    return last[:2] == "0x" and set(last[2:]) <= _HEX


def _ipv4(host: str) -> ipaddress.IPv4Address:
    """An IPv4 address in any form inet_aton reads: one to four parts, each decimal, octal (a
    leading 0) or hex (0x); the last part fills the bytes the others leave (`127.1` is 127.0.0.1)."""
    parts = host.split(".")
    if len(parts) > 4 or "" in parts:
        raise CallbackTargetRefused(f"callback_url's host {host!r} is not a valid IPv4 address")
    numbers = [_ipv4_number(part, host) for part in parts]
    if any(number > 255 for number in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise CallbackTargetRefused(f"callback_url's host {host!r} is not a valid IPv4 address (a part is too large)")
    value = numbers[-1]
    for position, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def _ipv4_number(part: str, host: str) -> int:
    if part.startswith("0x"):
        digits, base, allowed = part[2:], 16, _HEX
    elif len(part) > 1 and part.startswith("0"):
        digits, base, allowed = part[1:], 8, _OCTAL
    else:
        digits, base, allowed = part, 10, _DECIMAL
    if not set(digits) <= allowed:
        raise CallbackTargetRefused(f"callback_url's host {host!r} is not a valid IPv4 address")
    return int(digits, base) if digits else 0


def _bracketed_address(written: str) -> ipaddress.IPv6Address:
    if "%" in written:
        # A zone names an interface of this machine: never where a callback goes.
        raise CallbackTargetRefused("callback_url may not name an IPv6 zone (an interface of our machine)")
    try:
        return ipaddress.IPv6Address(written)
    except ValueError:
        raise CallbackTargetRefused(f"callback_url's host [{written}] is not a valid IPv6 address") from None


def _spells(written: str, address: IPAddress) -> bool:
    """Whether `written` is `address` in a standard form (so the message need not spell it out)."""
    try:
        return ipaddress.ip_address(written) == address
    except ValueError:
        return False


def _nat64_embedded(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _why(refusal: Refusal) -> str:
    if refusal.local:
        return "; callbacks go to public addresses (local ones only where the stack allows local callbacks)"
    return "; callbacks go to public addresses only"
