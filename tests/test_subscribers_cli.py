"""`paperboy subscribers …`: the admin's add, list, show, remove, import and export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import Config, load_config
from pipeline.models import SubscriberStatus
from pipeline.store import Store, open_store
from tests.conftest import write_config

WEB = '[web]\nsecret_key = "cli-test-secret-0123456789"\n'


class Admin:
    """Runs the CLI in-process against one isolated instance."""

    def __init__(self, folder: Path, url: str) -> None:
        self.path = write_config(folder, url, WEB)
        self.config: Config = load_config(self.path, env={})
        self.runner = CliRunner()

    def __call__(self, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        result = self.runner.invoke(
            app, ["--config", str(self.path), "subscribers", *args], input=stdin, env={}
        )
        return result.exit_code, result.stdout, result.stderr

    def mails(self) -> list[Path]:
        outbox = self.config.paths.outbox
        return sorted(outbox.glob("*.eml")) if outbox.exists() else []

    def store(self) -> Iterator[Store]:
        with open_store(self.config) as store:
            yield store


@pytest.fixture
def admin(tmp_path: Path, backend_url: str) -> Admin:
    """The CLI on an isolated instance, on each storage backend."""
    return Admin(tmp_path, backend_url)


@pytest.fixture
def store(admin: Admin) -> Iterator[Store]:
    yield from admin.store()


def test_add_makes_a_pending_subscriber_and_mails_a_confirmation(
    admin: Admin, store: Store
) -> None:
    """Without --no-opt-in the address must confirm, like a web sign-up."""
    code, out, err = admin("add", "Reader@Example.org", "--topic", "llm-inference", "--hour", "8")
    assert code == 0, err
    assert "added Reader@example.org as pending" in out and "confirmation mail sent" in out
    sub = store.subscribers.find("reader@example.org")
    assert sub is not None and sub.status == SubscriberStatus.PENDING and sub.send_hour == 8
    record = store.subscribers.record(sub.id)
    assert record is not None and record["consent"]["method"] == "double opt-in"
    assert len(admin.mails()) == 1


def test_add_without_opt_in_is_active_and_recorded_as_admin_entered(
    admin: Admin, store: Store
) -> None:
    """--no-opt-in activates at once, sends nothing, and says so in the consent record."""
    code, out, err = admin("add", "boss@example.org", "--no-opt-in", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "active"
    sub = store.subscribers.find("boss@example.org")
    assert sub is not None
    record = store.subscribers.record(sub.id)
    assert record is not None
    assert record["consent"]["method"] == "admin entry without opt-in"
    assert record["consent"]["source"] == "cli add"
    assert admin.mails() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-an-address"], "not a valid email address"),
        (["a@example.org\r\nBcc: b@example.org"], "line breaks"),
        (["a@example.org", "--topic", "no-such-topic"], "unknown topic 'no-such-topic'"),
        (["a@example.org", "--timezone", "Mars/Base"], "time zone"),
        (["a@example.org", "--hour", "25"], "0 to 23"),
    ],
)
def test_add_refuses_bad_input_with_one_line(
    admin: Admin, store: Store, args: list[str], message: str
) -> None:
    """A bad address, topic, zone or hour: exit 1, one line saying what is wrong."""
    code, _out, err = admin("add", *args)
    assert code == 1 and message in err and err.count("\n") == 1
    assert store.subscribers.all() == []


def test_add_refuses_an_existing_address(admin: Admin) -> None:
    """Adding an address twice (in any case) is refused."""
    admin("add", "a@example.org", "--no-opt-in")
    code, _out, err = admin("add", "A@example.org", "--no-opt-in")
    assert code == 1 and "already a subscriber" in err


def test_list_show_and_remove(admin: Admin, store: Store) -> None:
    """list shows the reader, show prints the consent, remove unsubscribes, --erase erases."""
    admin("add", "a@example.org", "--no-opt-in", "--topic", "robotics")
    code, out, _ = admin("list", "--json")
    assert code == 0 and [r["email"] for r in json.loads(out)] == ["a@example.org"]
    code, out, _ = admin("list")
    assert "a@example.org" in out and "1 subscriber" in out
    code, out, _ = admin("show", "a@example.org", "--json")
    assert json.loads(out)["consent"]["method"] == "admin entry without opt-in"
    code, out, _ = admin("show", "a@example.org")
    assert "consent" in out and "deliveries" in out
    code, out, _ = admin("remove", "a@example.org")
    assert code == 0 and "unsubscribed" in out
    sub = store.subscribers.find("a@example.org")
    assert sub is not None and sub.status == SubscriberStatus.UNSUBSCRIBED
    code, out, _ = admin("remove", str(sub.id), "--erase", "--yes")
    assert code == 0 and store.subscribers.find("a@example.org") is None
    assert store.subscribers.is_suppressed("a@example.org")
    code, _, err = admin("show", "a@example.org")
    assert code == 1 and "no subscriber" in err


def test_unsuppress_lets_an_erased_reader_sign_up_again(admin: Admin, store: Store) -> None:
    """An erased address is refused until an admin lifts its suppression; a bad or
    unsuppressed address is a one-line error."""
    admin("add", "back@example.org", "--no-opt-in", "--topic", "robotics")
    admin("remove", "back@example.org", "--erase", "--yes")
    code, _, err = admin("add", "back@example.org", "--no-opt-in", "--topic", "robotics")
    assert code != 0 and "was erased" in err and "subscribers unsuppress" in err
    code, out, _ = admin("unsuppress", "Back@Example.org", "--json")
    assert code == 0 and json.loads(out) == {"email": "Back@example.org", "outcome": "unsuppressed"}
    assert not store.subscribers.is_suppressed("back@example.org")
    code, _, _ = admin("add", "back@example.org", "--no-opt-in", "--topic", "robotics")
    assert code == 0 and store.subscribers.find("back@example.org") is not None
    code, _, err = admin("unsuppress", "back@example.org")
    assert code == 1 and err.strip() == "paperboy: error: back@example.org is not suppressed"
    code, _, err = admin("unsuppress", "not-an-address")
    assert code != 0 and len(err.strip().splitlines()) == 1


def test_unsuppress_lets_a_bounced_reader_sign_up_again(admin: Admin, store: Store) -> None:
    """A hard bounce keeps the row as suppressed; lifting the suppression makes it
    unsubscribed, from where a new sign-up starts over, and add names the suppression."""
    admin("add", "bounced@example.org", "--no-opt-in", "--topic", "robotics")
    store.subscribers.suppress("bounced@example.org", "550 no such user")
    code, _, err = admin("add", "bounced@example.org", "--no-opt-in")
    assert code != 0 and "subscribers unsuppress" in err
    code, _, _ = admin("unsuppress", "bounced@example.org")
    assert code == 0 and not store.subscribers.is_suppressed("bounced@example.org")
    sub = store.subscribers.find("bounced@example.org")
    assert sub is not None and sub.status == SubscriberStatus.UNSUBSCRIBED


BAD_CSV = """email,topics,timezone,send_hour,interests
good@example.org,robotics,UTC,7,fine
bad-address,robotics,UTC,7,x
x@example.org,no-such-topic,UTC,7,"a quoted
two-line cell"
y@example.org,robotics,Mars/Base,25,
good@example.org,robotics,UTC,7,
"""


def test_import_reports_every_bad_row_by_line_and_imports_nothing(
    admin: Admin, store: Store, tmp_path: Path
) -> None:
    """One bad row and the whole file is refused; each problem names its line."""
    path = tmp_path / "readers.csv"
    path.write_text(BAD_CSV, encoding="utf-8")
    code, _out, err = admin("import", str(path))
    assert code == 1
    assert f"{path}:3: email 'bad-address'" in err
    assert f"{path}:4: topics: unknown topic" in err
    assert f"{path}:6: timezone:" in err and f"{path}:6: send_hour:" in err
    assert f"{path}:7: good@example.org is also on line 2" in err
    assert "4 bad rows" in err and "nothing imported" in err
    assert store.subscribers.all() == [] and admin.mails() == []


def test_import_json_reports_lines_too(admin: Admin, store: Store, tmp_path: Path) -> None:
    """JSON items are reported by the line their object starts on."""
    path = tmp_path / "readers.json"
    path.write_text(
        '[\n  {"email": "a@example.org", "topics": ["robotics"]},\n'
        '  {"email": "b@example.org",\n   "topics": ["robotics"], "colour": "red"},\n'
        '  "not an object"\n]\n',
        encoding="utf-8",
    )
    code, out, err = admin("import", str(path), "--json")
    assert code == 1
    assert f"{path}:3: unknown column 'colour'" in err and f"{path}:5: each item" in err
    assert json.loads(out)["imported"] == 0
    assert store.subscribers.all() == []


def test_import_refuses_confirmed_statuses_without_no_opt_in(admin: Admin, tmp_path: Path) -> None:
    """Rows claiming 'active' need --no-opt-in: paperboy never saw them confirm."""
    path = tmp_path / "r.csv"
    path.write_text("email,status\na@example.org,active\n", encoding="utf-8")
    code, _out, err = admin("import", str(path))
    assert code == 1 and "needs --no-opt-in" in err


def test_import_valid_rows_as_pending_with_confirmations(
    admin: Admin, store: Store, tmp_path: Path
) -> None:
    """Valid rows become pending subscribers and each gets one confirmation mail."""
    path = tmp_path / "r.csv"
    path.write_text(
        "email,topics,authors\na@example.org,robotics; agents,Ada Lovelace; Alan Turing\n"
        "b@example.org,rag,\n",
        encoding="utf-8",
    )
    code, out, err = admin("import", str(path), "--dry-run")
    assert code == 0 and "2 rows are valid" in out and store.subscribers.all() == []
    code, out, err = admin("import", str(path))
    assert code == 0, err
    assert "imported 2 subscribers; 2 confirmation mails sent" in out
    a = store.subscribers.find("a@example.org")
    assert a is not None and a.status == SubscriberStatus.PENDING
    assert a.profile.topics == ("robotics", "agents")
    assert a.profile.authors == ("Ada Lovelace", "Alan Turing")
    assert len(admin.mails()) == 2


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_imports_back_into_a_fresh_instance(
    admin: Admin, tmp_path: Path, fmt: str, backend_url: str
) -> None:
    """export → import --no-opt-in reproduces every subscriber's settings and status."""
    admin("add", "a@example.org", "--no-opt-in", "--topic", "robotics", "--interests", "=1+2, ok")
    admin("add", "b@example.org", "--no-opt-in", "--frequency", "weekly", "--weekly-day", "3")
    admin("remove", "b@example.org")
    out_file = tmp_path / f"export.{fmt}"
    code, _out, err = admin("export", "--out", str(out_file))
    assert code == 0, err
    other = Admin(tmp_path / "other", "sqlite:///var/paperboy.db")
    code, _out, err = other("import", str(out_file), "--no-opt-in")
    assert code == 0, err
    _, before, _ = admin("list", "--json")
    _, after, _ = other("list", "--json")
    drop = ("id", "created_at", "confirmed_at")

    def strip(rows: str) -> list[dict[str, object]]:
        return [{k: v for k, v in r.items() if k not in drop} for r in json.loads(rows)]

    assert strip(after) == strip(before)
    assert [r["status"] for r in json.loads(after)] == ["active", "unsubscribed"]


def test_csv_export_never_starts_a_cell_with_a_formula(admin: Admin, tmp_path: Path) -> None:
    """Reader-chosen text like `=HYPERLINK(…)` is quoted with ' so a spreadsheet shows it as text;
    importing the file takes the quote off again (the round trip above)."""
    admin(
        "add",
        "a@example.org",
        "--no-opt-in",
        "--interests",
        '=HYPERLINK("http://evil.example","x")',
    )
    out_file = tmp_path / "export.csv"
    code, _out, err = admin("export", "--out", str(out_file))
    assert code == 0, err
    with out_file.open(newline="", encoding="utf-8") as f:
        [row] = list(csv.DictReader(f))
    assert row["interests"] == '\'=HYPERLINK("http://evil.example","x")'
    assert not any(v.startswith(("=", "+", "-", "@")) for v in row.values())


def test_add_sets_min_upvotes_and_refuses_a_bad_one(admin: Admin, store: Store) -> None:
    """--min-upvotes lands in the profile; a negative floor is one line, exit 1, nothing added."""
    code, _out, err = admin("add", "a@example.org", "--no-opt-in", "--min-upvotes", "25")
    assert code == 0, err
    sub = store.subscribers.find("a@example.org")
    assert sub is not None and sub.profile.min_upvotes == 25
    code, _out, err = admin("add", "b@example.org", "--min-upvotes", "-1")
    assert code == 1 and "min_upvotes: Enter a whole number of upvotes" in err
    assert err.count("\n") == 1 and store.subscribers.find("b@example.org") is None


def test_min_upvotes_travels_through_export_and_import(admin: Admin, tmp_path: Path) -> None:
    """The CSV has a min_upvotes column that imports back; a bad cell names its line."""
    admin("add", "a@example.org", "--no-opt-in", "--topic", "robotics", "--min-upvotes", "40")
    out_file = tmp_path / "export.csv"
    assert admin("export", "--out", str(out_file))[0] == 0
    (row,) = csv.DictReader(io.StringIO(out_file.read_text(encoding="utf-8")))
    assert row["min_upvotes"] == "40"
    other = Admin(tmp_path / "other", "sqlite:///var/paperboy.db")
    code, _out, err = other("import", str(out_file), "--no-opt-in")
    assert code == 0, err
    with open_store(other.config) as other_store:
        sub = other_store.subscribers.find("a@example.org")
        assert sub is not None and sub.profile.min_upvotes == 40
    bad = tmp_path / "bad.csv"
    bad.write_text("email,topics,min_upvotes\nc@example.org,robotics,lots\n", encoding="utf-8")
    code, _out, err = other("import", str(bad), "--no-opt-in")
    assert code == 1 and "bad.csv:2: min_upvotes: Enter a whole number of upvotes" in err
