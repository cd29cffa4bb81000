"""The web keys' checks: List-Id's form, the https warning, trusted proxies, /outbox's switch,
and how the web app copes with a reloaded config it cannot use."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.config import Config, load_config
from pipeline.config_view import is_loopback_url, start_warnings
from pipeline.embedding.runtime import shared
from pipeline.errors import ConfigError
from pipeline.store import open_store
from subscribers.web.runtime import LiveRuntime
from tests.test_config import run_cli
from tests.test_service import start, wait_for
from tests.test_web import SECRET


def config_with(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///var/paperboy.db"\n{text}', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("value", "stored"),
    [("daily.lab.example", "daily.lab.example"), ("<daily.lab.example>", "daily.lab.example")],
)
def test_a_list_id_is_a_dotted_id_with_optional_brackets(
    tmp_path: Path, value: str, stored: str
) -> None:
    config = load_config(config_with(tmp_path, f'[email]\nlist_id = "{value}"\n'), env={})
    assert config.email.list_id == stored


@pytest.mark.parametrize(
    "value",
    ["daily", "daily lab.example", "daily.lab.example\\r\\nBcc: x@y.z", "daily..lab", "", "<a.b"],
)
def test_a_bad_list_id_is_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_with(tmp_path, f'[email]\nlist_id = "{value}"\n'), env={})
    [problem] = caught.value.problems
    assert problem.startswith("email.list_id = ") and "dotted list id" in problem


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://127.8.0.1", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("http://papers.lab.example", False),
        ("http://10.0.0.1", False),
        ("http://127.0.0.1.nip.io", False),
    ],
)
def test_loopback_urls(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


def test_config_check_warns_about_a_plain_http_public_base_url(tmp_path: Path) -> None:
    """`config check` still says ok, and warns on stderr that RFC 8058 wants https."""
    path = config_with(tmp_path, '[web]\nbase_url = "http://papers.lab.example"\n')
    checked = run_cli("config", "check", str(path), cwd=tmp_path)
    assert (checked.returncode, checked.stdout.strip()) == (0, "ok")
    assert "warning: web.base_url = 'http://papers.lab.example' is not https" in checked.stderr
    for fine in ("https://papers.lab.example", "http://127.0.0.1:8080"):
        path.write_text(f'[web]\nbase_url = "{fine}"\n', encoding="utf-8")
        assert start_warnings(load_config(path, env={})) == []


def test_run_warns_about_a_plain_http_public_base_url(tmp_path: Path) -> None:
    """`paperboy run` prints the warning when it starts."""
    path = config_with(
        tmp_path,
        '[web]\nbase_url = "http://papers.lab.example"\n[schedule]\ningest_every_seconds = 60\n',
    )
    log = tmp_path / "run.log"
    with log.open("w", encoding="utf-8") as output:
        proc = start(path, "--no-web", "--no-deliver", output=output)
    try:
        wait_for(lambda: "is not https" in log.read_text(encoding="utf-8"), "the warning")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "web.base_url = 'http://papers.lab.example' is not https" in log.read_text("utf-8")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('trusted_proxies = ["proxy.lan"]', "web.trusted_proxies = "),
        ('outbox_view = "sometimes"', "web.outbox_view = 'sometimes': must be \"auto\""),
        ('secret_key = "too-short"', "web.secret_key = '***': must be empty (generated"),
    ],
)
def test_bad_web_keys_are_refused_by_name(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_with(tmp_path, f"[web]\n{text}\n"), env={})
    assert caught.value.problems[0].startswith(problem)


def test_trusted_proxies_and_outbox_view_from_the_environment(tmp_path: Path) -> None:
    path = config_with(tmp_path, "")
    env = {
        "PAPERBOY_WEB__TRUSTED_PROXIES": "10.0.0.5, 10.1.0.7/16",
        "PAPERBOY_WEB__OUTBOX_VIEW": "false",
    }
    web = load_config(path, env=env).web
    assert web.trusted_proxies == ["10.0.0.5", "10.1.0.0/16"]
    assert web.outbox_view is False
    assert load_config(path, env={}).web.outbox_view == "auto"


def test_a_reloaded_config_the_app_cannot_use_keeps_the_last_one(tmp_path: Path) -> None:
    """A reload with a key too short to sign leaves the web app on its last good runtime."""
    good = load_config(config_with(tmp_path, f'[web]\nsecret_key = "{SECRET}"\n'), env={})
    bad = good.model_copy(
        update={"web": good.web.model_copy(update={"secret_key": SecretStr("too-short")})}
    )
    current: list[Config] = [good]

    async def scenario() -> None:
        with open_store(good) as store:
            live = LiveRuntime(lambda: current[0], good, store, sentences=shared())
            first = await live.get()
            current[0] = bad
            assert await live.get() is first
            await live.close()

    asyncio.run(scenario())


def test_a_replaced_runtime_keeps_its_sender_until_queued_mail_is_out(tmp_path: Path) -> None:
    """The old sender closes after the last mail queued on it, not under it."""
    good = load_config(config_with(tmp_path, f'[web]\nsecret_key = "{SECRET}"\n'), env={})
    rt_config = [good]

    async def scenario() -> None:
        with open_store(good) as store:
            live = LiveRuntime(lambda: rt_config[0], good, store, sentences=shared())
            old = await live.get()
            old.hold()  # a confirmation mail queued on the old sender
            rt_config[0] = good.model_copy()
            fresh = await live.get()
            assert fresh is not old and fresh.config is rt_config[0]
            assert old.release() is True  # the queued mail was the last: close now
            assert fresh.retire() is True  # nothing queued: closes at once
            await live.close()

    asyncio.run(scenario())


def test_a_reload_of_a_key_that_needs_a_restart_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Trusted proxies are uvicorn's: a reload changing them warns that a restart is needed."""
    good = load_config(config_with(tmp_path, f'[web]\nsecret_key = "{SECRET}"\n'), env={})
    moved = good.model_copy(
        update={"web": good.web.model_copy(update={"trusted_proxies": ["10.0.0.5"]})}
    )
    current = [good]

    async def scenario() -> None:
        with open_store(good) as store:
            live = LiveRuntime(lambda: current[0], good, store, sentences=shared())
            current[0] = moved
            assert (await live.get()).config is moved
            await live.close()

    asyncio.run(scenario())
    assert "web.trusted_proxies changed: the web app takes it up after a restart" in caplog.text
