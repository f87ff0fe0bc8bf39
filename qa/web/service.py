"""What every part of the server shares: the settings, the credentials, the limits,
and the assistant once it is loaded.

Owns `Service`: the API, the page's handlers, the editor login and the middleware all
read one instance, so that a client's requests per minute, the engine's slots and the
state of loading are the same whichever way a request comes in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from qa.answering.assistant import Assistant
from qa.config import Settings
from qa.web.security import Access, EngineSlots, RateLimiter

LOADING_MESSAGE = "L'index est en cours de chargement : réessayez dans quelques secondes."
FAILED_MESSAGE = ("Le serveur n'a pas pu charger l'index : l'administrateur trouvera la cause "
                  "dans son journal.")


@dataclass
class Service:
    """The server's shared state. `assistant` is None until the index is loaded."""

    settings: Settings
    access: Access
    limiter: RateLimiter
    engine: EngineSlots
    assistant: Assistant | None = None
    failed: bool = False
    ready: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def from_settings(cls, settings: Settings, assistant: Assistant | None = None) -> Service:
        service = cls(settings, Access.from_settings(settings),
                      RateLimiter(settings.rate_limit),
                      EngineSlots(settings.answer_concurrency, settings.queue_size))
        if assistant is not None:
            service.loaded(assistant)
        return service

    def loaded(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.ready.set()

    @property
    def state(self) -> str:
        """« ready », « loading » or « failed »."""
        if self.assistant is not None:
            return "ready"
        return "failed" if self.failed else "loading"

    @property
    def max_upload_bytes(self) -> int:
        return self.settings.max_upload_mb * 1024 * 1024
