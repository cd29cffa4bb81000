"""Erasing a reader also removes their mails from the outbox folder (so ``/outbox`` no longer
shows them), from the settings page and from ``paperboy subscribers remove --erase``."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.send import remove_mail_to
from tests.test_subscribers_cli import Admin, admin, store
from tests.test_web import Site, link, make_site, site

__all__ = ["admin", "make_site", "site", "store"]  # fixtures shared with their modules


def outbox_recipients(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.glob("*.eml")):
        head = path.read_bytes().split(b"\r\n\r\n", 1)[0].decode()
        match = re.search(r"^To: (.+)$", head, re.MULTILINE)
        assert match, head
        found.append(match.group(1).strip())
    return sorted(found)


def test_erasing_from_the_settings_page_removes_the_readers_outbox_mails(site: Site) -> None:
    """The reader's confirmation and welcome mails go; another reader's mails stay."""
    reader = site.confirmed("Leaving@Example.org")
    site.confirmed("staying@example.org")
    site.signup("LEAVING@example.org")  # within the resend window: no third mail to them
    assert outbox_recipients(site.config.paths.outbox) == [
        "Leaving@example.org",
        "Leaving@example.org",
        "staying@example.org",
        "staying@example.org",
    ]
    (welcome,) = [m for m in site.mails_to("leaving@example.org") if "/p/" in m.as_string()]
    prefs = link(welcome, "p")
    page = site.client.get(prefs)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    done = site.client.post(f"{prefs}/delete", data={"csrf": csrf.group(1), "sure": "yes"})
    assert done.status_code == 200
    assert site.store.subscribers.get(reader.id) is None
    assert outbox_recipients(site.config.paths.outbox) == [
        "staying@example.org",
        "staying@example.org",
    ]


def test_remove_erase_on_the_cli_removes_the_readers_outbox_mails(admin: Admin) -> None:
    """`subscribers remove --erase` says how many outbox mails went; others stay; a plain
    remove (unsubscribe) leaves the folder alone."""
    for address in ("gone@example.org", "kept@example.org"):
        code, _, err = admin("add", address, "--topic", "llm-inference")
        assert code == 0, err
    code, out, err = admin("remove", "kept@example.org")
    assert code == 0, err
    assert len(admin.mails()) == 2
    code, out, err = admin("remove", "GONE@example.org", "--erase", "--yes")
    assert code == 0, err
    assert out.strip() == "gone@example.org: erased, 1 outbox mail(s) removed"
    assert outbox_recipients(admin.config.paths.outbox) == ["kept@example.org"]


def test_removing_mail_from_a_missing_outbox_is_nothing(tmp_path: Path) -> None:
    """No outbox folder yet (SMTP deployments): nothing to remove, no error."""
    assert remove_mail_to(tmp_path / "outbox", "reader@example.org") == 0
