"""Who may read and who may write, and how much each client may ask.

Owns `Access` (the credentials of `QA_EDITOR_TOKEN` and `QA_READ_TOKEN`, compared in
constant time, and whether writes are open, need the editor token, or are off),
`RateLimiter` (requests per minute per client, a token bucket each) and `EngineSlots`
(how many questions the engine answers at once, and how many may wait). The API, the
page's handlers and the server's middleware all ask these; nothing here knows HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum

from qa.config import Settings

WRITES_OFF_MESSAGE = (
    "L'ajout et le retrait d'articles sont désactivés sur ce serveur : il écoute sur une "
    "adresse partagée sans jeton d'éditeur. L'administrateur peut définir QA_EDITOR_TOKEN "
    "pour les ouvrir aux éditeurs.")
EDITOR_ONLY_MESSAGE = ("Seuls les éditeurs peuvent ajouter ou retirer des articles : "
                       "indiquez le jeton d'éditeur.")
BAD_TOKEN_MESSAGE = "Jeton refusé : vérifiez le jeton d'éditeur ou de lecture que vous indiquez."
READ_TOKEN_MESSAGE = ("Ce serveur est réservé à ses lecteurs : indiquez le jeton de lecture "
                      "(en-tête Authorization: Bearer …).")
RATE_MESSAGE = ("Trop de requêtes : au plus {limit} par minute et par client sur ce serveur. "
                "Réessayez dans {wait} s.")
BUSY_MESSAGE = ("Le serveur est saturé : trop de questions attendent déjà leur tour. "
                "Réessayez dans un instant.")

# An editor's login on the page lasts a working day.
SESSION_SECONDS = 12 * 3600
EDITOR_COOKIE = "qa_editor"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class Writes(Enum):
    """Who may add and remove articles."""

    OPEN = "open"  # a single person's machine: loopback, no proxy, no editor token
    EDITORS = "editors"  # the editor token is required
    OFF = "off"  # shared address and no editor token: nobody


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach a server listening on `host`."""
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def _digest(secret: str) -> bytes:
    # Hashing first makes the comparison's time independent of both lengths too.
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time equality; an unset `expected` never matches."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(_digest(given), _digest(expected))


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass(frozen=True)
class Access:
    """The server's credentials and what they open. Never printed: no repr of secrets."""

    editor_token: str = field(default="", repr=False)
    read_token: str = field(default="", repr=False)
    # Reached only from this machine: loopback address and no reverse proxy in front.
    local: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        local = is_loopback(settings.host) and not settings.trusted_proxies.strip()
        return cls(settings.editor_token, settings.read_token, local)

    @property
    def writes(self) -> Writes:
        if self.editor_token:
            return Writes.EDITORS
        return Writes.OPEN if self.local else Writes.OFF

    @property
    def reads_protected(self) -> bool:
        return bool(self.read_token)

    def is_editor(self, token: str | None) -> bool:
        return same_secret(token, self.editor_token)

    def may_read(self, token: str | None) -> bool:
        """Reading is open unless QA_READ_TOKEN is set; the editor token reads too."""
        if not self.read_token:
            return True
        return same_secret(token, self.read_token) or self.is_editor(token)

    def may_write_on_page(self, session: str | None) -> bool:
        """The page's upload: open on a single person's machine, else an editor session
        (the cookie that « Connexion éditeur » sets)."""
        return self.writes is Writes.OPEN or (self.writes is Writes.EDITORS
                                              and self.valid_session(session))

    def new_session(self, now: float | None = None) -> str:
        """An editor session's cookie value: its expiry, signed with the editor token, so
        that changing the token ends every session and the server keeps no state."""
        expiry = int((time.time() if now is None else now) + SESSION_SECONDS)
        return f"{expiry}.{self._signature(expiry)}"

    def valid_session(self, value: str | None, now: float | None = None) -> bool:
        if not self.editor_token or not value:
            return False
        expiry, _, signature = value.partition(".")
        if not expiry.isdigit() or int(expiry) < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(signature.encode(), self._signature(int(expiry)).encode())

    def _signature(self, expiry: int) -> str:
        return hmac.new(self.editor_token.encode("utf-8", "surrogatepass"),
                        f"qa-editor-session:{expiry}".encode(), hashlib.sha256).hexdigest()

    def may_write_by_api(self, token: str | None) -> bool:
        """The API always wants the token: a web page the user visits can post a form to
        127.0.0.1 without the user knowing, but cannot add an Authorization header."""
        return self.writes is Writes.EDITORS and self.is_editor(token)

    def known(self, token: str | None) -> bool:
        """Whether `token` is one of the server's credentials."""
        return self.is_editor(token) or same_secret(token, self.read_token)


class RateLimiter:
    """`per_minute` requests per client and per minute, as a token bucket: a client may
    spend them in a burst, then gets one back every 60 / per_minute seconds. 0: no limit."""

    def __init__(self, per_minute: int, max_clients: int = 100_000):
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, when)
        self._lock = threading.Lock()
        self._max_clients = max_clients

    def check(self, client: str) -> float:
        """Spends one request of `client`; 0 when allowed, else the seconds to wait."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - then) * rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                allowed = True
            else:
                self._buckets[client] = (tokens, now)
                allowed = False
            if len(self._buckets) > self._max_clients:
                self._forget_full(now, rate)
        return 0.0 if allowed else (1 - tokens) / rate

    def message(self, wait: float) -> str:
        return RATE_MESSAGE.format(limit=self.per_minute, wait=max(1, math.ceil(wait)))

    def _forget_full(self, now: float, rate: float) -> None:
        # A client whose bucket has refilled is the same as one never seen: forgetting
        # it bounds the memory a flood of addresses can take.
        full = [c for c, (tokens, then) in self._buckets.items()
                if tokens + (now - then) * rate >= self.per_minute]
        for client in full:
            del self._buckets[client]


class Busy(Exception):
    """Too many questions wait already: the caller says « saturé » instead of queueing."""


class EngineSlots:
    """At most `concurrency` questions in the engine at once, `waiting` more in line.

    The engine is CPU-bound and torch already spreads one question over every core:
    answering more at once is not faster, and a bounded line keeps a flood from
    holding thousands of threads. The API and the page share one instance."""

    def __init__(self, concurrency: int, waiting: int):
        self.concurrency, self.capacity = concurrency, concurrency + waiting
        self._slots = threading.BoundedSemaphore(concurrency)
        self._count = 0
        self._lock = threading.Lock()

    @contextmanager
    def slot(self):
        with self._lock:
            if self._count >= self.capacity:
                raise Busy(BUSY_MESSAGE)
            self._count += 1
        try:
            with self._slots:
                yield
        finally:
            with self._lock:
                self._count -= 1
