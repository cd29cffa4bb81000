"""The one exception tree of paperboy; the CLI and the web app translate it at their edges.

    PaperboyError                 anything paperboy raises on purpose
    ├── ConfigError               config.toml or an environment override is invalid
    ├── StoreError                the database cannot be reached, migrated or written
    ├── IngestError               a whole dump file is unusable (quarantined with this message)
    │   └── DumpTooLarge          the file is over ``ingest.max_file_bytes``
    ├── MatchError                an interest profile cannot be scored (e.g. unknown topic)
    ├── RenderError               a template failed to render or compile to HTML
    ├── SendError                 one message could not be handed over
    │   ├── TemporarySendError    4xx, timeouts, dropped connections: retry later
    │   ├── PermanentSendError    5xx (except 552) at DATA: give up on this message
    │   │   └── RecipientRefused  5xx (except 552) at RCPT: the address is refused; suppress it
    │   └── SendAbort             auth or TLS failure: stop the whole run, mark nothing
    ├── TokenError                a signed link is forged, expired, replayed or for another purpose
    ├── SubscriberError           a subscriber operation was refused (bad address, unknown id …)
    │   ├── AddressError          an email address paperboy will not accept; the message says why
    │   └── StaleFormError        a settings form came back without a valid CSRF token
    └── RequestTooLarge           a request body passed the web app's cap (answered with 413)

Every error's message is one line that says what is wrong and what to do about it.
"""

from __future__ import annotations


class PaperboyError(Exception):
    """Base class of every error paperboy raises on purpose."""


class ConfigError(PaperboyError):
    """The configuration is invalid; ``problems`` lists one line per bad key."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class StoreError(PaperboyError):
    """The database could not be opened, migrated or written."""


class IngestError(PaperboyError):
    """A whole dump file is unusable; the message becomes its quarantine reason."""


class DumpTooLarge(IngestError):
    """The dump file is larger than the configured cap."""


class MatchError(PaperboyError):
    """A profile or query cannot be scored."""


class RenderError(PaperboyError):
    """An email or page failed to render."""


class SendError(PaperboyError):
    """A message could not be handed to the mail server."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporarySendError(SendError):
    """The server or network asked us to try again later."""


class PermanentSendError(SendError):
    """The server refused this message for good."""


class RecipientRefused(PermanentSendError):
    """The server refused the recipient address for good (5xx at RCPT): suppress it."""


class SendAbort(SendError):
    """Authentication or TLS failed: nothing can be sent with this configuration."""


class TokenError(PaperboyError):
    """A signed token is invalid for the purpose it was presented for."""


class SubscriberError(PaperboyError):
    """A subscriber operation was refused."""


class AddressError(SubscriberError):
    """An email address that paperboy will not accept; the message says why."""


class StaleFormError(SubscriberError):
    """A settings form was open too long or posted from elsewhere; nothing was changed."""


class RequestTooLarge(PaperboyError):
    """A request body is larger than the web app accepts."""
