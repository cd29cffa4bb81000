"""Rendered mails score low with SpamAssassin's offline rules (`spamassassin -L -t`).

SpamAssassin (Debian package ``spamassassin``) runs as a real subprocess over the exact bytes
paperboy would send: a 10-paper digest (with a paper known only by its title) and the notices.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.config import Config
from pipeline.mime import build_message, message_bytes, message_id_for
from pipeline.models import Selection
from pipeline.render import Renderer
from tests.delivery_world import EDITION, NOW, links_for, make_paper, reader, scored

SPAMASSASSIN = "/usr/bin/spamassassin"
LIMIT = 1.0


def spam_score(message: bytes, home: Path) -> tuple[float, str]:
    """The score and the report of ``spamassassin -L -t`` (local tests only, no network)."""
    if not Path(SPAMASSASSIN).exists() or shutil.which("spamassassin") is None:
        pytest.fail(f"{SPAMASSASSIN} is missing: apt-get install spamassassin")
    done = subprocess.run(
        [SPAMASSASSIN, "-L", "-t"],
        input=message,
        capture_output=True,
        timeout=120,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    out = done.stdout.decode("utf-8", "replace")
    found = re.search(r"^X-Spam-Status: \w+, score=(-?\d+(?:\.\d+)?)", out, re.M)
    assert found is not None, out[:2000]
    return float(found[1]), out[out.find("Content analysis details") :]


def test_ten_paper_digest_scores_below_one(tmp_path: Path) -> None:
    config = Config()
    papers = [make_paper(i) for i in range(9)]
    papers.append(make_paper(9, id="t:00000000000000a9", arxiv_id=None, url=None, pdf_url=None))
    selection = Selection(
        subscriber_id=42, edition_date=EDITION, papers=scored(papers), more_count=3
    )
    links = links_for(42, [p.id for p in papers])
    rendered = Renderer.from_config(config).digest(selection, reader(), links, sent_at=NOW)
    assert len(rendered.paper_ids) == 10 and "huggingface.co/papers?q=" in rendered.html
    message = build_message(
        rendered,
        to="reader42@example.org",
        email=config.email,
        message_id=message_id_for(42, EDITION, config.email),
        unsubscribe_url=links.unsubscribe,
        date=NOW,
    )
    score, report = spam_score(message_bytes(message), tmp_path)
    assert score < LIMIT, report


@pytest.mark.parametrize("kind", ["confirm", "welcome"])
def test_notices_score_below_one(kind: str, tmp_path: Path) -> None:
    config = Config()
    base = "https://papers.example.org"
    links = {
        "confirm": f"{base}/c/token",
        "preferences": f"{base}/p/token",
        "unsubscribe": f"{base}/u/token",
    }
    rendered = Renderer.from_config(config).notice(
        kind,  # type: ignore[arg-type]
        to="reader@example.org",
        links=links,
        first_digest="tomorrow at 08:00, Europe/Berlin",
    )
    message = build_message(
        rendered,
        to="reader@example.org",
        email=config.email,
        message_id=f"<{kind}.1.abcdef@example.org>",
        unsubscribe_url=links["unsubscribe"],
        date=NOW,
    )
    score, report = spam_score(message_bytes(message), tmp_path)
    assert score < LIMIT, report
