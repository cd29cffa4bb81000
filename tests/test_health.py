"""The health record: conditions noted by any process, read back by ``/healthz``, on SQLite and
PostgreSQL, with whole runs against a real SMTP server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipeline.config import Config
from pipeline.deliver import Tally
from pipeline.embedding import Embedder, ModelUnavailable
from pipeline.embedding.runtime import SentenceModel
from pipeline.health import note_run, note_service
from pipeline.run import deliver_due
from pipeline.schedule import LiveConfig
from pipeline.store import Store
from tests.conftest import write_config
from tests.delivery_world import NOW, add_readers, seed_papers, smtp_config, stub_select
from tests.smtp_server import SmtpServer

BLOCKED = "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked"


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


def healthz(config: Config) -> dict[str, Any]:
    from subscribers.web import create_app

    with TestClient(create_app(config)) as client:
        r = client.get("/healthz")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def names(store: Store) -> list[str]:
    return [r.name for r in store.health.report(NOW).reasons]


def test_a_condition_keeps_its_start_until_cleared(store: Store) -> None:
    """Setting a condition again updates its reason but not when it began; clearing it (and
    only it) brings health back to ok."""
    assert store.health.report(NOW).status == "ok"
    store.health.set("run", "aborted: TLS failed", NOW)
    store.health.set("config", "bad edit", NOW)
    store.health.set("run", "aborted: auth failed", NOW + dt.timedelta(hours=1))
    report = store.health.report(NOW)
    assert report.status == "degraded"
    assert [r.name for r in report.reasons] == ["config", "run"]
    run = report.reasons[1]
    assert (run.name, run.reason, run.since) == ("run", "aborted: auth failed", NOW)
    store.health.clear("run")
    assert names(store) == ["config"]
    store.health.clear("config")
    assert store.health.report(NOW).status == "ok"


def test_healthz_is_degraded_while_the_breaker_is_open_and_ok_after_a_run_sends(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """A 554 5.7.1 storm trips the breaker: /healthz says degraded with the breaker's reason,
    and still does once the pause is over, until a run sends; then it is ok."""
    config = smtp_config(instance, server.port)
    breaker = config.delivery.breaker.model_copy(update={"policy_refusals": 2, "policy_window": 5})
    # The dump is dated on the test's clock (NOW) while /healthz reads the real one: keep the
    # stale-dump condition out of a test about the breaker.
    schedule = config.schedule.model_copy(update={"dump_stale_hours": 1e6})
    config = config.model_copy(
        update={
            "delivery": config.delivery.model_copy(update={"breaker": breaker}),
            "schedule": schedule,
        }
    )
    seed_papers(store)
    add_readers(store, 3)
    server.storm("rcpt", BLOCKED)
    assert deliver_due(config, NOW, store=store, select=stub_select).paused is not None
    body = healthz(config)
    assert body["status"] == "degraded"
    [reason] = body["reasons"]
    assert reason["name"] == "breaker"
    assert reason["reason"].startswith("circuit breaker open: 2 of the last 2 recipients")
    assert reason["since"].startswith("2026-07-03T08:00")
    during = store.health.report(NOW + dt.timedelta(minutes=5)).reasons[0].reason
    assert during.endswith("; delivery paused until 2026-07-03 08:15 UTC")
    # The pause is over (as it is for /healthz, on today's clock) and nothing has been sent:
    after = store.health.report(NOW + dt.timedelta(hours=7)).reasons[0].reason
    assert after.endswith("; no run has sent since")

    server.heal()
    assert deliver_due(config, NOW + dt.timedelta(minutes=16), store=store, select=stub_select).sent
    body = healthz(config)
    assert (body["status"], body["reasons"]) == ("ok", [])


def test_an_aborted_run_degrades_health_until_a_run_ends_normally(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """A run aborted by a server without STARTTLS leaves "run" degraded with its reason;
    the next run that is not aborted clears it; a run that found the lease taken says
    nothing either way."""
    seed_papers(store)
    add_readers(store, 2)
    strict = smtp_config(instance, server.port, security="starttls")
    assert deliver_due(strict, NOW, store=store, select=stub_select).aborted
    [run] = store.health.report(NOW).reasons
    assert run.name == "run" and "STARTTLS" in run.reason
    note_run(store, Tally(busy=True), NOW)
    assert names(store) == ["run"]
    plain = smtp_config(instance, server.port)
    assert deliver_due(plain, NOW, store=store, select=stub_select).sent == 2
    assert store.health.report(NOW).status == "ok"


def test_a_failed_config_reload_degrades_health_until_a_good_one(
    tmp_path: Any, backend_url: str
) -> None:
    """The service notes LiveConfig's failed reload (the last good config stays in force)
    and clears it when a good edit loads; /healthz shows both."""
    path = write_config(tmp_path, backend_url)
    live = LiveConfig(path)
    good = path.read_text()
    path.write_text(good + "\n[delivery]\nbatch_size = -1\n")
    assert not live.reload() and live.last_error
    note_service(live.config, live.last_error)
    body = healthz(live.config)
    assert body["status"] == "degraded"
    [reason] = body["reasons"]
    assert reason["name"] == "config"
    assert reason["reason"].startswith("config reload failed, the last good config is in force")
    assert "batch_size" in reason["reason"]
    path.write_text(good + "\n# fixed\n")
    live.reload()
    note_service(live.config, live.last_error)
    assert healthz(live.config)["status"] == "ok"


def unavailable() -> Embedder:
    raise ModelUnavailable("no model.onnx in /nowhere")


def test_a_run_whose_matching_fell_back_to_lexical_records_it(
    instance: Config, store: Store
) -> None:
    """Meaning on and the model unavailable: the run still sends (to the outbox) and the
    health record says matching fell back to lexical, for /healthz in any process."""
    seed_papers(store)
    add_readers(store, 1)
    on = instance.model_copy(
        update={"meaning": instance.meaning.model_copy(update={"enabled": True})}
    )
    tally = deliver_due(on, NOW, store=store, model=SentenceModel(unavailable))
    assert tally.sent == 1
    [matching] = store.health.report(NOW).reasons
    assert matching.name == "matching"
    assert "fell back to lexical" in matching.reason and "/nowhere" in matching.reason
