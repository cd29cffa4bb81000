"""``/metrics`` over real HTTP: the store's counts at scrape time (whoever wrote them), this
process's counters, and who may read them."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline import health
from pipeline.mime import message_id_for
from pipeline.models import Delivery, DeliveryStatus, SubscriberStatus
from pipeline.store import open_store
from tests.delivery_world import EDITION, NOW, add_readers, seed_papers
from tests.operator_world import seed_editions
from tests.served import Served

TOKEN = "metrics-test-token-0123456789"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, keyed by its name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def scrape(served: Served) -> Samples:
    response = httpx.get(f"{served.base}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAPERBOY_ADMIN_TOKEN", raising=False)


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PAPERBOY_ADMIN_TOKEN", TOKEN)
    return TOKEN


@pytest.mark.usefixtures("no_token")
def test_a_local_scrape_reads_the_store_as_it_is(tmp_path: Path, backend_url: str) -> None:
    """Subscribers, today's editions and the ledger by status, papers, dumps ingested and
    quarantined, the last dump's age, the delivery lag and the health record, all read from
    the store at the scrape; this process's counters are there too."""
    with Served(tmp_path, backend_url) as served:
        config = served.config
        now = dt.datetime.now(dt.UTC)
        with open_store(config) as store:
            seed_editions(store, now)  # 5 active readers, 1 pending, one edition per status
            seed_papers(store, 3, at=now - dt.timedelta(hours=2))
            # An edition two days old still queued: its reader's 07:00 UTC is long past.
            late_reader = store.subscribers.add(
                "late@example.org", status=SubscriberStatus.ACTIVE, send_hour=7, now=now
            )
            old_day = now.date() - dt.timedelta(days=2)
            late = Delivery(
                subscriber_id=late_reader.id,
                edition_date=old_day,
                status=DeliveryStatus.QUEUED,
                message_id="<late@example.org>",
            )
            store.ledger.queue_many([late], now)
            health.note(store, health.RUN, "last delivery run aborted: test", now)
        config.paths.quarantine.mkdir(parents=True)
        (config.paths.quarantine / "broken.json").write_text("{", encoding="utf-8")
        (config.paths.quarantine / "broken.json.error.txt").write_text("bad", encoding="utf-8")

        before = dt.datetime.now(dt.UTC)
        samples = scrape(served)
        after = dt.datetime.now(dt.UTC)

    assert value(samples, "paperboy_store_up") == 1
    assert value(samples, "paperboy_subscribers", status="active") == 6
    assert value(samples, "paperboy_subscribers", status="pending") == 1
    assert value(samples, "paperboy_subscribers", status="unsubscribed") == 0
    for status in ("sent", "deferred", "failed", "missed", "queued"):
        assert value(samples, "paperboy_editions_today", status=status) == 1, status
    assert value(samples, "paperboy_ledger_rows", status="queued") == 2
    assert value(samples, "paperboy_ledger_rows", status="sent") == 1
    assert value(samples, "paperboy_papers") == 3
    assert value(samples, "paperboy_dumps_ingested") == 1
    assert value(samples, "paperboy_dumps_quarantined") == 1
    assert 2 * 3600 - 60 <= value(samples, "paperboy_last_dump_age_seconds") <= 2 * 3600 + 600
    due = dt.datetime.combine(old_day, dt.time(7), tzinfo=dt.UTC)
    lag = value(samples, "paperboy_delivery_lag_seconds")
    assert (before - due).total_seconds() <= lag <= (after - due).total_seconds()
    # Today's queued and deferred editions are overdue once 07:00 UTC has passed.
    today_overdue = 2 if before >= before.replace(hour=7, minute=0, second=0) else 0
    assert value(samples, "paperboy_editions_overdue") == 1 + today_overdue
    assert value(samples, "paperboy_health_ok") == 0
    assert value(samples, "paperboy_health_reason", reason="run") == 1
    assert value(samples, "paperboy_health_reason", reason="dump") == 0
    # This process's counters, every class present from the start.
    for reply in ("2xx", "4xx", "5xx", "connection"):
        assert ("paperboy_smtp_replies_total", (("class", reply),)) in samples
    assert ("paperboy_ingest_files_total", (("outcome", "quarantined"),)) in samples
    assert ("paperboy_send_seconds_count", ()) in samples
    assert ("paperboy_config_reload_failures_total", ()) in samples


def paperboy(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipeline.cli import app; app()",
            "--config",
            str(config),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.mark.usefixtures("no_token")
def test_a_send_in_another_process_shows_in_the_next_scrape(
    tmp_path: Path, backend_url: str
) -> None:
    """``paperboy send`` run in its own process: the next scrape of the serving app counts
    the editions it sent, because the gauges read the store, not this process's memory."""
    with Served(tmp_path, backend_url) as served:
        config = served.config
        with open_store(config) as store:
            papers = [p.id for p in seed_papers(store, 3)]
            readers = add_readers(store, 4)
            for sub in readers:  # queued as an earlier run would have left them
                store.ledger.queue(
                    sub.id, EDITION, message_id_for(sub.id, EDITION, config.email), papers, NOW
                )
        first = scrape(served)
        assert value(first, "paperboy_ledger_rows", status="queued") == 4
        assert value(first, "paperboy_ledger_rows", status="sent") == 0

        result = paperboy(tmp_path / "config.toml", "send", "--now", NOW.isoformat())
        assert result.returncode == 0, result.stderr

        second = scrape(served)
    assert value(second, "paperboy_ledger_rows", status="queued") == 0
    assert value(second, "paperboy_ledger_rows", status="sent") == 4
    # The sends were another process's: this one's latency histogram did not move.
    assert value(second, "paperboy_send_seconds_count") == value(
        first, "paperboy_send_seconds_count"
    )


def own_address() -> str:
    """This machine's address on its outward interface (a UDP "connect" sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))
        address = str(probe.getsockname()[0])
    assert not address.startswith("127."), "this test needs a non-loopback interface"
    return address


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'var' / 'paperboy.db'}"


PROXY_HEADERS = [
    {"X-Forwarded-For": "203.0.113.9"},
    {"Forwarded": "for=203.0.113.9"},
    {"X-Real-IP": "203.0.113.9"},
    {"CF-Connecting-IP": "203.0.113.9"},
]


@pytest.mark.usefixtures("no_token")
@pytest.mark.parametrize("headers", PROXY_HEADERS)
def test_without_a_token_a_proxied_request_gets_404(
    tmp_path: Path, sqlite_url: str, headers: dict[str, str]
) -> None:
    """A request that came through a proxy, CDN or tunnel on this machine is not local: with
    no admin token set, /metrics does not exist for it."""
    with Served(tmp_path, sqlite_url) as served:
        refused = httpx.get(f"{served.base}/metrics", headers=headers)
        assert httpx.get(f"{served.base}/metrics").status_code == 200
    assert refused.status_code == 404
    assert "paperboy_" not in refused.text


@pytest.mark.usefixtures("no_token")
@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8080"])
def test_a_foreign_host_name_from_this_machine_gets_404(
    tmp_path: Path, sqlite_url: str, host: str
) -> None:
    """A page whose domain was re-pointed at 127.0.0.1 (DNS rebinding) cannot read the
    metrics from a browser on this machine; localhost by name can."""
    with Served(tmp_path, sqlite_url) as served:
        foreign = httpx.get(f"{served.base}/metrics", headers={"Host": host})
        by_name = httpx.get(f"{served.base}/metrics", headers={"Host": "localhost"})
    assert foreign.status_code == 404
    assert by_name.status_code == 200


@pytest.mark.usefixtures("no_token")
def test_without_a_token_a_remote_client_gets_404_even_with_a_bearer(
    tmp_path: Path, sqlite_url: str
) -> None:
    """From another address (the machine's own outward one), nothing opens /metrics while
    PAPERBOY_ADMIN_TOKEN is unset, not even an Authorization header."""
    with Served(tmp_path, sqlite_url, host="0.0.0.0") as served:
        url = f"http://{own_address()}:{served.base.rsplit(':', 1)[1]}/metrics"
        plain = httpx.get(url)
        with_bearer = httpx.get(url, headers={"Authorization": "Bearer guess"})
    assert plain.status_code == 404
    assert with_bearer.status_code == 404


def test_a_remote_client_needs_the_admin_token(tmp_path: Path, sqlite_url: str, token: str) -> None:
    """With the token set, a remote client gets 401 (with a Bearer challenge) without it or
    with a wrong one, and the metrics with it."""
    with Served(tmp_path, sqlite_url, host="0.0.0.0") as served:
        url = f"http://{own_address()}:{served.base.rsplit(':', 1)[1]}/metrics"
        missing = httpx.get(url)
        wrong = httpx.get(url, headers={"Authorization": f"Bearer {token}x"})
        other_scheme = httpx.get(url, headers={"Authorization": f"Basic {token}"})
        right = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        lower = httpx.get(url, headers={"Authorization": f"bearer {token}"})
        local = httpx.get(f"{served.base}/metrics")
    for refused in (missing, wrong, other_scheme):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "paperboy_" not in refused.text
    assert right.status_code == 200
    assert value(parse(right.text), "paperboy_store_up") == 1
    assert lower.status_code == 200
    assert local.status_code == 200  # a local scraper needs no token


def test_a_proxied_request_with_the_token_is_served(
    tmp_path: Path, sqlite_url: str, token: str
) -> None:
    """Behind a reverse proxy, a scraper reads /metrics with the bearer token only."""
    with Served(tmp_path, sqlite_url) as served:
        proxied = {"X-Forwarded-For": "203.0.113.9"}
        refused = httpx.get(f"{served.base}/metrics", headers=proxied)
        served_ok = httpx.get(
            f"{served.base}/metrics", headers={**proxied, "Authorization": f"Bearer {token}"}
        )
    assert refused.status_code == 401
    assert served_ok.status_code == 200
    assert "paperboy_subscribers" in served_ok.text
