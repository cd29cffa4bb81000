"""The one exception tree of paperboy; the CLI and the web app translate it at their edges.

    PaperboyError                 anything paperboy raises on purpose
    ├── ConfigError               config.toml or an environment override is invalid
    │   └── ConfigEditRefused     an edit (`config set`, the admin Config page) would not
    │                             validate; the file was left unchanged
    ├── StoreError                the database cannot be reached, migrated or written
    │   └── BackupError           a backup cannot be taken (the target exists, no pg_dump …)
    ├── IngestError               a whole dump file is unusable (quarantined with this message)
    │   ├── DumpTooLarge          the file is over ``ingest.max_file_bytes``
    │   └── TooManyRecords        the dump holds more entries than ``ingest.max_records``
    ├── MatchError                an interest profile cannot be scored (e.g. unknown topic)
    ├── RenderError               a template failed to render or compile to HTML
    ├── SendError                 one message could not be handed over (pipeline.bounces)
    │   ├── TemporarySendError    4xx, 552, dropped connections: retry later
    │   │   ├── PolicyRefusal     5.7.x, 554 without 5.1.x, 421: retry later, never suppress;
    │   │   │                     the circuit breaker counts them
    │   │   └── Unreachable       connect failed or timed out, or any timeout: retry later;
    │   │                         the circuit breaker counts them
    │   ├── PermanentSendError    another 5xx at DATA: give up on this message
    │   │   ├── RecipientRefused  5.1.1/5.1.2/5.1.3/5.1.10/5.2.1: the address is gone; suppress it
    │   │   └── RecipientBounced  another 5xx at RCPT: +1 to the address's bounce score
    │   ├── SendAbort             auth or TLS failure: stop the whole run, mark nothing
    │   └── DeliveryUncertain     the connection was lost after DATA's final dot, before the
    │                             reply: the server may have it; recorded, never resent
    ├── ReturnedMailError         a returned message is no DSN or ARF report naming a delivery
    │                             of ours (left where it is, counted as unparseable)
    ├── TokenError                a signed link is forged, expired, replayed or for another purpose
    │   └── ExpiredTokenError     … genuine, but older than its purpose allows
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


class ConfigEditRefused(ConfigError):
    """A one-key edit of the config file would make it invalid; nothing was written."""


class StoreError(PaperboyError):
    """The database could not be opened, migrated or written."""


class BackupError(StoreError):
    """``paperboy backup`` could not copy the database to the path it was given."""


class IngestError(PaperboyError):
    """A whole dump file is unusable; the message becomes its quarantine reason."""


class DumpTooLarge(IngestError):
    """The dump file is larger than the configured cap."""


class TooManyRecords(IngestError):
    """The dump holds more entries than the configured cap; none of them is stored."""


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


class PolicyRefusal(TemporarySendError):
    """The server refused us, not the reader (5.7.x, 554, 421): retry later, never suppress."""


class Unreachable(TemporarySendError):
    """The server could not be reached, or did not answer in time."""


class RecipientRefused(PermanentSendError):
    """The server says the address does not exist or is disabled (5.1.x, 5.2.1): suppress it."""


class RecipientBounced(PermanentSendError):
    """The server refused the recipient without saying the address is gone: count a bounce."""


class SendAbort(SendError):
    """Authentication or TLS failed: nothing can be sent with this configuration."""


class DeliveryUncertain(SendError):
    """The connection was lost after DATA's final dot and before the server's reply: the
    message may have been delivered. Recorded ``sent_ambiguous`` and never resent, since a
    resend is a duplicate whenever the server did keep it."""


class ReturnedMailError(PaperboyError):
    """Returned mail that cannot be read as a report about one of our deliveries."""


class TokenError(PaperboyError):
    """A signed token is invalid for the purpose it was presented for."""


class ExpiredTokenError(TokenError):
    """A genuine token, signed by us for this purpose, but older than its ``max_age``."""


class SubscriberError(PaperboyError):
    """A subscriber operation was refused."""


class AddressError(SubscriberError):
    """An email address that paperboy will not accept; the message says why."""


class StaleFormError(SubscriberError):
    """A settings form was open too long or posted from elsewhere; nothing was changed."""


class RequestTooLarge(PaperboyError):
    """A request body is larger than the web app accepts."""
