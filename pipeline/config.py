"""The config tree: ``config.toml`` plus ``PAPERBOY_…`` environment overrides, validated once.

``load_config(path)`` is the only reader. Relative paths in the file resolve against the file's
folder, so a config copied into a temporary folder is a complete, isolated instance.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from pipeline.errors import ConfigError

ENV_PREFIX = "PAPERBOY_"
_DOMAIN = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
# Short names for the secrets an operator sets most often.
ENV_ALIASES = {
    "PAPERBOY_SECRET_KEY": ("web", "secret_key"),
    "PAPERBOY_PREVIOUS_SECRET_KEYS": ("web", "previous_secret_keys"),
}
# RFC 2919's list-id: dot-atom text (RFC 5322 atext between dots) with at least one dot.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LIST_ID = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})+")
# Environment variables that are not config keys.
ENV_IGNORED = {"PAPERBOY_CONFIG"}


class Section(BaseModel):
    """A config section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Paths(Section):
    var: Path = Field(Path("var"), examples=["var"])
    inbox: Path = Field(Path("var/inbox"), examples=["/srv/paperboy/inbox"])
    archive: Path = Field(Path("var/archive"), examples=["var/archive"])
    quarantine: Path = Field(Path("var/quarantine"), examples=["var/quarantine"])
    outbox: Path = Field(Path("var/outbox"), examples=["var/outbox"])


class Storage(Section):
    url: str = Field(
        "sqlite:///var/paperboy.db",
        examples=["postgresql+psycopg://paperboy@127.0.0.1:5432/paperboy"],
    )
    busy_timeout_ms: int = Field(5000, ge=0, examples=[5000])

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql")):
            raise ValueError("must start with sqlite:/// or postgresql")
        return value


class Ingest(Section):
    max_file_bytes: int = Field(50_000_000, ge=1, examples=[50_000_000])
    settle_seconds: float = Field(2.0, ge=0, examples=[2.0])
    max_records: int = Field(100_000, ge=1, examples=[100_000])
    chunk_records: int = Field(1_000, ge=1, le=100_000, examples=[1_000])


class Match(Section):
    trending_weight: float = Field(0.35, ge=0, le=5, examples=[0.35])
    author_boost: float = Field(1.0, ge=0, le=10, examples=[1.0])
    feedback_weight: float = Field(0.3, ge=0, le=5, examples=[0.3])
    min_relevance: float = Field(0.1, ge=0, examples=[0.1])
    # A paper under this share of the reader's best match of the run is not sent (0: off).
    relative_floor: float = Field(0.75, ge=0, le=1, examples=[0.75])


class Meaning(Section):
    """Matching by meaning: the sentence model, and how many papers get vectors per tick."""

    enabled: bool = Field(True, examples=[True])
    per_tick: int = Field(64, ge=1, le=10_000, examples=[64])


class Topic(Section):
    title: str = Field(..., min_length=1, examples=["Spiking neural networks"])
    description: str = Field("", examples=["Event-driven networks of spiking neurons"])
    keywords: list[str] = Field(default_factory=list, examples=[["spiking", "SNN"]])
    # The sign-up page's heading the topic is listed under; none puts it under "Other".
    group: str = Field("", max_length=60, examples=["Language models"])
    # Listed in the sign-up page's "Popular" group, which opens first.
    popular: bool = Field(False, examples=[True])


class Breaker(Section):
    """The circuit breaker: what pauses a delivery run, and for how long."""

    policy_refusals: int = Field(20, ge=1, examples=[20])
    policy_window: int = Field(50, ge=1, examples=[50])
    connect_failures: int = Field(5, ge=1, examples=[5])
    busy_replies: int = Field(10, ge=1, examples=[10])
    busy_window_seconds: float = Field(60.0, gt=0, examples=[60.0])
    pause_minutes: float = Field(15.0, gt=0, examples=[15.0])
    pause_max_hours: float = Field(6.0, gt=0, examples=[6.0])

    @field_validator("policy_window")
    @classmethod
    def _window_holds_the_threshold(cls, value: int, info: ValidationInfo) -> int:
        refusals = info.data.get("policy_refusals")
        if refusals is not None and value < refusals:
            raise ValueError(f"must be at least policy_refusals ({refusals})")
        return value


class Delivery(Section):
    backend: Literal["outbox", "smtp"] = Field("outbox", examples=["smtp"])
    batch_size: int = Field(500, ge=1, examples=[500])
    retry_base_seconds: float = Field(300.0, gt=0, examples=[300.0])
    retry_max_seconds: float = Field(21_600.0, gt=0, examples=[21_600.0])
    give_up_after_hours: float = Field(72.0, gt=0, examples=[72.0])
    late_cutoff_hours: float = Field(6.0, gt=0, le=24, examples=[6.0])
    sending_stale_minutes: float = Field(10.0, gt=0, examples=[10.0])
    breaker: Breaker = Breaker()


class Smtp(Section):
    host: str = Field("localhost", min_length=1, examples=["smtp.example.org"])
    port: int = Field(587, ge=1, le=65535, examples=[587])
    security: Literal["starttls", "tls", "none"] = Field("starttls", examples=["tls"])
    username: str = Field("", examples=["paperboy"])
    password: SecretStr = Field(SecretStr(""), examples=["set PAPERBOY_SMTP__PASSWORD"])
    ca_file: Path | None = Field(None, examples=["/etc/ssl/certs/my-ca.pem"])
    timeout_seconds: float = Field(30.0, gt=0, examples=[30.0])
    pool_size: int = Field(4, ge=1, le=64, examples=[4])
    rate_per_second: float = Field(20.0, gt=0, examples=[20.0])


class Email(Section):
    from_address: str = Field("paperboy@example.org", examples=["papers@lab.example"])
    from_name: str = Field("paperboy", examples=["Lab paper digest"])
    reply_to: str = Field("", examples=["editor@lab.example"])
    list_id: str = Field("daily.paperboy.example.org", examples=["daily.lab.example"])
    postal_address: str = Field(
        "paperboy, 1 Example Street, 00000 Example City", examples=["Lab, 1 Road, City"]
    )
    unsubscribe_mailto: str = Field("", examples=["unsubscribe@lab.example"])
    max_html_bytes: int = Field(90_000, ge=10_000, examples=[90_000])
    dkim_selector: str = Field("", examples=["pb2026"])
    dkim_domain: str = Field("", examples=["lab.example"])
    dkim_private_key_file: Path | None = Field(None, examples=["/etc/paperboy/dkim.pem"])
    bounce_domain: str = Field("", examples=["bounces.lab.example"])

    @field_validator("bounce_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        # It goes into every digest's envelope sender: a bare DNS name, nothing else.
        if value and not _DOMAIN.fullmatch(value):
            raise ValueError("must be a domain name like bounces.example.org (no @, no spaces)")
        return value.lower()

    @field_validator("list_id")
    @classmethod
    def _list_id(cls, value: str) -> str:
        # RFC 2919 writes it in angle brackets; the header adds them, so accept either form.
        bare = value.strip()
        if bare.startswith("<") and bare.endswith(">"):
            bare = bare[1:-1]
        if len(bare) > 255 or not _LIST_ID.fullmatch(bare):
            raise ValueError(
                "must be a dotted list id like daily.lab.example (RFC 2919: letters, digits "
                "and -_.+ only, at least one dot, no spaces)"
            )
        return bare

    @field_validator("from_address", "reply_to", "unsubscribe_mailto")
    @classmethod
    def _one_address(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n") or (value and "@" not in value):
            raise ValueError("must be one email address like name@example.org")
        return value


class Bounces(Section):
    """Returned mail (DSNs, complaints) that the service reads on a schedule."""

    maildir: Path | None = Field(None, examples=["/var/mail/paperboy-bounces"])
    scan_every_seconds: float = Field(300.0, gt=0, examples=[300.0])


class Web(Section):
    host: str = Field("127.0.0.1", examples=["127.0.0.1"])
    port: int = Field(8080, ge=1, le=65535, examples=[8080])
    base_url: str = Field("http://127.0.0.1:8080", examples=["https://papers.lab.example"])
    secret_key: SecretStr = Field(SecretStr(""), examples=["set PAPERBOY_SECRET_KEY"])
    previous_secret_keys: list[SecretStr] = Field(
        default_factory=list, examples=["set PAPERBOY_PREVIOUS_SECRET_KEYS=old1,old2"]
    )
    trusted_proxies: list[str] = Field(default_factory=list, examples=[["10.0.0.5"]])
    outbox_view: Literal["auto"] | bool = Field("auto", examples=[False])
    confirm_token_days: float = Field(7.0, gt=0, examples=[7.0])
    signups_per_ip_per_hour: int = Field(20, ge=1, examples=[20])
    confirmation_resend_hours: float = Field(24.0, ge=0, examples=[24.0])
    goodbye_mail: bool = Field(False, examples=[True])

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("previous_secret_keys", "trusted_proxies", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        # An environment variable can only carry text: "a,b" is the list ["a", "b"].
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("outbox_view", mode="before")
    @classmethod
    def _tri_state(cls, value: object) -> object:
        # "auto", or a boolean (from the environment: true/false, on/off, 1/0).
        if isinstance(value, bool) or value == "auto":
            return value
        words = {"true": True, "on": True, "1": True, "false": False, "off": False, "0": False}
        if isinstance(value, str) and value.strip().lower() in words:
            return words[value.strip().lower()]
        raise ValueError('must be "auto", true or false')

    @field_validator("secret_key")
    @classmethod
    def _signing_key(cls, value: SecretStr) -> SecretStr:
        # Empty means "generate one under var/"; anything else must be a real key, or a reload
        # would hand the scheduler a key it cannot sign with.
        if 0 < len(value.get_secret_value()) < 16:
            raise ValueError("must be empty (generated under var/) or at least 16 characters")
        return value

    @field_validator("previous_secret_keys")
    @classmethod
    def _long_enough(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(key.get_secret_value()) < 16 for key in value):
            raise ValueError("every previous key must be at least 16 characters")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                text = item.strip()
                if "/" in text:
                    out.append(str(ipaddress.ip_network(text, strict=False)))
                else:
                    out.append(str(ipaddress.ip_address(text)))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network like 10.0.0.5 or 10.0.0.0/24"
                ) from None
        return out


class Schedule(Section):
    ingest_every_seconds: float = Field(60.0, gt=0, examples=[60.0])
    deliver_every_seconds: float = Field(60.0, gt=0, examples=[60.0])
    config_reload_seconds: float = Field(10.0, gt=0, examples=[10.0])
    dump_stale_hours: float = Field(36.0, gt=0, examples=[36.0])


# The shortest ledger and sent-paper retention: planning looks a week back for owed editions
# and matching eight days back for papers and the last edition (``pipeline.editions``), so
# rows younger than two weeks are still read.
MIN_RETENTION_DAYS = 14


class Retention(Section):
    """How long old rows and files are kept; 0 keeps them forever (the default: an upgrade
    never deletes anything the operator did not ask it to)."""

    deliveries_days: int = Field(0, ge=0, examples=[180])
    sent_papers_days: int = Field(0, ge=0, examples=[180])
    archive_days: int = Field(0, ge=0, examples=[90])
    outbox_days: int = Field(0, ge=0, examples=[30])
    prune_every_hours: float = Field(24.0, gt=0, examples=[24.0])

    @field_validator("deliveries_days", "sent_papers_days")
    @classmethod
    def _long_enough(cls, value: int) -> int:
        if 0 < value < MIN_RETENTION_DAYS:
            raise ValueError(
                f"must be 0 (keep forever) or at least {MIN_RETENTION_DAYS} days, "
                "which planning and matching still read"
            )
        return value


class Config(Section):
    """The whole configuration. Every field has a default: an empty file is a working setup."""

    paths: Paths = Paths()
    storage: Storage = Storage()
    ingest: Ingest = Ingest()
    match: Match = Match()
    meaning: Meaning = Meaning()
    delivery: Delivery = Delivery()
    smtp: Smtp = Smtp()
    email: Email = Email()
    web: Web = Web()
    schedule: Schedule = Schedule()
    bounces: Bounces = Bounces()
    retention: Retention = Retention()
    topics: dict[str, Topic] = Field(default_factory=dict)

    # Where the file lives; relative paths were resolved against it. Not a config key.
    root: Path = Field(Path("."), exclude=True)

    @field_validator("topics")
    @classmethod
    def _slugs(cls, value: dict[str, Topic]) -> dict[str, Topic]:
        for slug in value:
            if not slug or not all(c.isalnum() or c == "-" for c in slug) or slug != slug.lower():
                raise ValueError(f"topic slug {slug!r} must be lowercase letters, digits and -")
        return value


def default_config_path() -> Path:
    return Path(os.environ.get("PAPERBOY_CONFIG", "config.toml"))


def load_config(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, merge environment overrides, validate and resolve paths; raise ConfigError."""
    path = Path(path) if path is not None else default_config_path()
    env = os.environ if env is None else env
    data = read_toml(path)
    apply_env(data, env)
    return validate(data, root=path.resolve().parent)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such config file; copy config.toml from the project or pass --config"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config ({e})") from e
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e


def apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """``PAPERBOY_SMTP__PASSWORD=…`` sets ``[smtp] password``; later keys win over the file."""
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_IGNORED:
            continue
        if name in ENV_ALIASES:
            keys: tuple[str, ...] = ENV_ALIASES[name]
        else:
            keys = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
            if len(keys) < 2:
                continue
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {'.'.join(keys)} is not a section")
            node = child
        node[keys[-1]] = value


def validate(data: dict[str, Any], root: Path) -> Config:
    try:
        config = Config.model_validate(data)
    except ValidationError as e:
        problems = [describe_error(err) for err in e.errors()]
        raise ConfigError("; ".join(problems), problems) from None
    return resolve_paths(config, root)


def resolve_paths(config: Config, root: Path) -> Config:
    def res(p: Path) -> Path:
        return p if p.is_absolute() else (root / p)

    paths = config.paths.model_copy(
        update={k: res(v) for k, v in config.paths.model_dump().items()}
    )
    url = config.storage.url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        file = Path(url[len("sqlite:///") :])
        url = "sqlite:///" + str(res(file))
    smtp = config.smtp
    if smtp.ca_file is not None:
        smtp = smtp.model_copy(update={"ca_file": res(smtp.ca_file)})
    email = config.email
    if email.dkim_private_key_file is not None:
        email = email.model_copy(update={"dkim_private_key_file": res(email.dkim_private_key_file)})
    storage = config.storage.model_copy(update={"url": url})
    bounces = config.bounces
    if bounces.maildir is not None:
        bounces = bounces.model_copy(update={"maildir": res(bounces.maildir)})
    return config.model_copy(
        update={
            "paths": paths,
            "storage": storage,
            "smtp": smtp,
            "email": email,
            "bounces": bounces,
            "root": root,
        }
    )


def describe_error(err: Any) -> str:
    """``smtp.port = 99999: must be at most 65535 (example: 587)`` for one pydantic error."""
    loc = tuple(str(p) for p in err["loc"])
    key = ".".join(loc) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key (check the spelling against config.toml's comments)"
    if err["type"] == "missing":
        return f"{key}: required key is missing{_example(loc)}"
    shown = err.get("input")
    if any(part in key for part in ("password", "secret_key")):
        shown = "***"
    msg = msg.removeprefix("Value error, ")
    return f"{key} = {shown!r}: {msg[0].lower() + msg[1:]}{_example(loc)}"


def _example(loc: tuple[str, ...]) -> str:
    model: Any = Config
    field = None
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            if field is None:
                if model is Config and part in ("topics",):
                    continue
                return ""
            model = field.annotation
        elif model is not None and getattr(model, "__origin__", None) is dict:
            model = Topic
            field = None
        else:
            return ""
    if loc and loc[0] == "topics" and len(loc) >= 3:
        field = Topic.model_fields.get(loc[2])
    if field is not None and field.examples:
        return f" (example: {field.examples[0]!r})"
    return ""
