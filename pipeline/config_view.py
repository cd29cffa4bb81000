"""The config as shown to people: secrets masked, and the warnings a valid config still earns.

``pipeline.config`` says what a valid config is; this module says how one looks in
``paperboy config show``, on the admin Config page, and at ``paperboy run``'s start.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from pipeline.config import Config

SECRET_KEYS = ("smtp.password", "web.secret_key", "web.previous_secret_keys")


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this machine: localhost, 127.0.0.0/8 or [::1]."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_warnings(config: Config) -> list[str]:
    """What ``paperboy run`` and ``config check`` point out in a valid config."""
    warnings = []
    base_url = config.web.base_url
    if not base_url.startswith("https://") and not is_loopback_url(base_url):
        warnings.append(
            f"web.base_url = {base_url!r} is not https: mail clients may refuse the one-click "
            "unsubscribe (RFC 8058 wants an https URL); put the app behind TLS"
        )
    return warnings


def masked(config: Config) -> dict[str, Any]:
    """The effective config as plain data, secrets shown as ``***`` when set."""
    data: dict[str, Any] = config.model_dump(mode="json", exclude={"root"})
    for dotted in SECRET_KEYS:
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        if isinstance(value, list):
            data[section][key] = ["***" for _ in value]
        else:
            data[section][key] = "***" if value.get_secret_value() else ""
    cleaned: dict[str, Any] = _drop_none(data)
    return cleaned


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value
