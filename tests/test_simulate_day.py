"""The simulated day (``benchmarks/simulate_day.py``) on a small crowd: it runs, its checks
pass on a correct day, and they catch a doubled or a missing mail."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks.simulate_day import START, check, instance, seed, simulate
from pipeline.store import open_store

READERS = 80


@pytest.mark.slow
def test_a_small_day_sends_each_edition_once_and_the_checks_catch_mistakes(
    tmp_path: Path,
) -> None:
    """Every reader's edition is in the ledger once, sent at its moment, one mail each; a
    copied mail file, then a deleted one, make the check fail."""
    with instance(tmp_path, None) as config, open_store(config) as store:
        seed(store, config, READERS, START)
        lines = simulate(config, store, "outbox", START)
        figures = check(config, store, START, "outbox")
        assert figures["readers"] == READERS
        assert figures["editions_expected"] == READERS  # no zone changes offset that day
        assert figures["ledger_rows"] == READERS
        assert figures["status_sent"] == figures["eml_files"] > 0
        assert figures["status_sent"] + figures.get("status_skipped", 0) == READERS
        assert any(line.startswith("  total") for line in lines)

        mails = sorted(config.paths.outbox.glob("*.eml"))
        shutil.copy(mails[0], mails[0].with_name("copy-" + mails[0].name))
        with pytest.raises(AssertionError, match="eml_mismatches = 1"):
            check(config, store, START, "outbox")
        mails[0].with_name("copy-" + mails[0].name).unlink()
        mails[1].unlink()
        with pytest.raises(AssertionError, match="eml_mismatches = 1"):
            check(config, store, START, "outbox")
