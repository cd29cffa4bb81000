"""Save a PNG of each admin page, at 1280 px wide, into a folder: for release notes and review.

Command (from the checkout, with the dev install and Debian's chromium)::

    python scripts/admin_screenshots.py /tmp/admin-shots

It builds a throw-away instance in a temporary folder (SQLite, the outbox backend), fills it
with a few readers, today's editions in every state and a fortnight of earlier ones
(``tests/admin_world.seed`` and ``history``), serves
the app with an admin token on a free port, logs in with headless Chromium and saves
``admin-<page>.png`` for the login form, Today, Deliveries, Subscribers, one subscriber, the
preview, the erase confirmation, the Outbox, one mail and Config. Nothing outside the
temporary folder and the output folder is touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.store import open_store
from tests.admin_world import TOKEN, AdminServed, history, seed

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def pages(ids: dict[str, int]) -> list[tuple[str, str]]:
    """(file name, admin path) for every page worth a picture."""
    ada = ids["ada@example.org"]
    return [
        ("today", "/admin"),
        ("deliveries", "/admin/deliveries"),
        ("subscribers", "/admin/subscribers?q=example.org"),
        ("subscriber", f"/admin/subscribers/{ada}"),
        ("preview", f"/admin/subscribers/{ada}/preview"),
        ("erase", f"/admin/subscribers/{ids['dee@example.org']}/erase"),
        ("outbox", "/admin/outbox"),
        ("mail", "/admin/outbox/welcome.eml"),
        ("config", "/admin/config"),
    ]


def save(page: Page, out: Path, name: str) -> None:
    path = out / f"admin-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNGs (created if missing)")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp, AdminServed(Path(tmp)) as app:
        with open_store(app.config) as store:
            now = dt.datetime.now(dt.UTC)
            ids = seed(store, app.config, now)
            history(store, ids, now)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(app.base + "/admin/login")
            save(page, out, "login")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_url(app.base + "/admin")
            for name, path in pages(ids):
                page.goto(app.base + path)
                page.wait_for_load_state("load")
                save(page, out, name)
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
