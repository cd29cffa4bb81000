"""Format detection, decoding, dump dates, the file-size cap and ids shared across formats."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import DumpTooLarge, IngestError
from pipeline.ingest import decode, detect_format, dump_date_for, parse_dump, read_dump
from pipeline.models import Dump
from pipeline.papers import title_key

DATA = Path(__file__).parent / "data"
SAMPLES = {
    "hf_page": "hf_page_2026-07-03.txt",
    "hf_api": "hf_api_2026-07-02.json",
    "arxiv_atom": "arxiv_2026-07-02.atom",
}
PAGE_ENTRY = "A Café Paper\n\nNaïve abstract.\n\n  • 2 authors\n·\nJun 2, 2026\n"
# Latin-1 has no "•": an organisation byline keeps this entry encodable (and accented).
LATIN1_ENTRY = "A Café Paper\n\nNaïve abstract.\n\nEcoleLab École Lab\n·\nJun 2, 2026\n"


@pytest.mark.parametrize(("expected", "sample"), SAMPLES.items())
@pytest.mark.parametrize("misleading_name", ["dump.txt", "dump.json", "dump.atom", "dump"])
def test_format_is_detected_from_content_not_the_name(
    expected: str, sample: str, misleading_name: str
) -> None:
    """Each sample is recognised whatever extension it is given."""
    assert detect_format((DATA / sample).read_bytes(), misleading_name) == expected


@pytest.mark.parametrize(
    "first_line",
    ["[Re] Reproducing Sparse Attention", "{{ 7*7 }} Is 49", "<script> Considered Harmful"],
)
def test_page_dump_starting_like_json_or_markup_is_still_a_page(first_line: str) -> None:
    """A title that begins with ``[``, ``{`` or ``<`` does not make the dump JSON or XML."""
    assert detect_format(f"{first_line}\n\nAbstract.\n", "dump.txt") == "hf_page"


def test_content_after_a_long_run_of_blank_lines_is_still_seen() -> None:
    """Detection looks at the first content, however many blank lines come before it."""
    assert detect_format("\n" * 10_000 + '[{"title": "x"}]', "dump.txt") == "hf_api"


def test_extension_breaks_the_tie_for_undeclared_markup() -> None:
    """Markup without an XML declaration or <feed> root: .atom → Atom parser, .txt → page."""
    text = "<results><paper/></results>"
    assert detect_format(text, "x.atom") == "arxiv_atom"
    assert detect_format(text, "x.txt") == "hf_page"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"   \n\n", "empty file"),
        (b"<!DOCTYPE html>\n<html><body>Daily Papers</body></html>", "HTML page"),
        (b'<?xml version="1.0"?>\n<rss version="2.0"/>', "root <rss>, not an Atom <feed>"),
        (bytes(range(256)) * 4, "binary content, not a text dump"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary content, not a text dump"),
    ],
)
def test_unrecognisable_content_is_an_ingest_error(data: bytes, reason: str) -> None:
    """Empty, HTML, other XML and binary files are refused with a one-line reason."""
    with pytest.raises(IngestError, match=reason):
        detect_format(data, "dump.txt")
    with pytest.raises(IngestError, match=reason):
        parse_dump(data, "dump.txt", dt.date(2026, 7, 3))


def test_utf8_bom_and_line_endings_are_normalised() -> None:
    """A UTF-8 BOM is dropped; CRLF and stray CR become LF; no warning for either."""
    text, warnings = decode(b"\xef\xbb\xbfone\r\ntwo\rthree\n")
    assert (text, warnings) == ("one\ntwo\nthree\n", [])


def test_latin1_bytes_are_decoded_with_a_warning() -> None:
    """A Latin-1 page dump is read with its accents intact and a warning naming the line."""
    data = ("Daily Papers\n\n" + LATIN1_ENTRY).encode("latin-1")
    dump = parse_dump(data, "hf_page_2026-07-03.txt", dt.date(2026, 7, 3))
    [paper] = dump.papers
    assert (paper.title, paper.abstract, paper.organization) == (
        "A Café Paper",
        "Naïve abstract.",
        "École Lab",
    )
    [warning] = dump.warnings
    assert warning.where == "line 3" and "not UTF-8" in warning.message


def test_windows_1252_page_dump_keeps_its_bullets() -> None:
    """A page saved as Windows-1252 ("•" is byte 0x95) still yields its author counts."""
    data = ("Daily Papers\n\n" + PAGE_ENTRY).encode("cp1252")
    dump = parse_dump(data, "hf_page_2026-07-03.txt", dt.date(2026, 7, 3))
    assert [(p.title, p.authors_count) for p in dump.papers] == [("A Café Paper", 2)]
    assert "Windows-1252" in dump.warnings[0].message


def test_cp1252_punctuation_is_decoded() -> None:
    """Windows-1252 curly quotes and dashes (0x93, 0x94, 0x96) come out as themselves."""
    text, warnings = decode(b"\x93Quoted\x94 \x96 dash")
    assert text == "\u201cQuoted\u201d \u2013 dash"
    assert "Windows-1252" in warnings[0].message


def test_mostly_utf8_with_one_bad_byte_keeps_the_good_accents() -> None:
    """One broken byte in a UTF-8 file is replaced; the rest is not re-read as Latin-1."""
    text, warnings = decode("Naïve résumé ".encode() + b"\xff end")
    assert text == "Naïve résumé \ufffd end"
    assert "1 invalid UTF-8" in warnings[0].message


def test_utf16_with_bom_is_decoded_with_a_warning() -> None:
    """Windows "Unicode" (UTF-16 with BOM) is readable despite its NUL bytes."""
    text, warnings = decode("Daily Papers\r\n".encode("utf-16"))
    assert text == "Daily Papers\n"
    assert "UTF-16" in warnings[0].message


def test_text_dense_with_control_characters_is_binary() -> None:
    """Valid UTF-8 that is mostly control characters is still not a text dump."""
    with pytest.raises(IngestError, match="binary content"):
        decode(b"\x01\x02\x03\x04 abc \x05\x06\x07\x08" * 100)


def test_dump_date_comes_from_the_name_then_explicit_then_mtime() -> None:
    """DESIGN.md: the ISO date in the file name wins, then --date, then the mtime (UTC)."""
    explicit = dt.date(2026, 1, 1)
    late_evening_utc = dt.datetime(2026, 5, 4, 23, 30, tzinfo=dt.UTC).timestamp()
    assert dump_date_for("hf_page_2026-07-03.txt", explicit, 0) == dt.date(2026, 7, 3)
    assert dump_date_for("hf_page.txt", explicit, 0) == explicit
    assert dump_date_for("hf_page.txt", None, late_evening_utc) == dt.date(2026, 5, 4)


def test_dump_date_ignores_invalid_dates_and_folder_names() -> None:
    """``2026-13-45`` is no date; only the base name counts; the last valid date wins."""
    assert dump_date_for("dump_2026-13-45.txt", None, 0) == dt.date(1970, 1, 1)
    assert dump_date_for("/in/2020-01-01/dump.txt", dt.date(2026, 2, 2), 0) == dt.date(2026, 2, 2)
    assert dump_date_for("export_2026-07-04_for_2026-07-03.txt", None, 0) == dt.date(2026, 7, 3)


def test_file_over_the_cap_is_refused_without_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 100 MB (sparse) file raises DumpTooLarge with sizes and the config key; no read."""
    path = tmp_path / "huge_2026-07-03.txt"
    with path.open("wb") as f:
        f.truncate(100 * 2**20)

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("read_dump opened a file that is over the cap")

    monkeypatch.setattr(Path, "open", no_reading)
    monkeypatch.setattr(Path, "read_bytes", no_reading)
    with pytest.raises(DumpTooLarge) as caught:
        read_dump(path, max_bytes=50_000_000)
    assert str(caught.value) == (
        "file is 104,857,600 bytes, over the 50,000,000-byte cap (ingest.max_file_bytes)"
    )


def test_file_at_the_cap_is_read_and_dated_from_its_name(tmp_path: Path) -> None:
    """A file exactly max_bytes long is accepted; its name gives the dump date."""
    data = (DATA / SAMPLES["arxiv_atom"]).read_bytes()
    path = tmp_path / "arxiv_2026-07-09.atom"
    path.write_bytes(data)
    dump = read_dump(path, max_bytes=len(data), date=dt.date(2000, 1, 1))
    assert (dump.name, dump.dump_date, dump.format) == (
        path.name,
        dt.date(2026, 7, 9),
        "arxiv_atom",
    )
    assert dump.id == hashlib.sha256(data).hexdigest()


def test_read_dump_uses_explicit_date_then_mtime(tmp_path: Path) -> None:
    """Without a date in the name, --date is used, and without it the file's mtime."""
    path = tmp_path / "page.txt"
    path.write_text(PAGE_ENTRY)
    os.utime(path, (0, dt.datetime(2026, 3, 8, 12, tzinfo=dt.UTC).timestamp()))
    assert read_dump(path, max_bytes=10**6, date=dt.date(2026, 7, 1)).dump_date == dt.date(
        2026, 7, 1
    )
    assert read_dump(path, max_bytes=10**6).dump_date == dt.date(2026, 3, 8)


def test_missing_file_or_folder_is_an_ingest_error(tmp_path: Path) -> None:
    """A path that is not a readable regular file is reported, not a raw OSError."""
    with pytest.raises(IngestError, match="cannot read the file"):
        read_dump(tmp_path / "nope.txt", max_bytes=10**6)
    with pytest.raises(IngestError, match="not a regular file"):
        read_dump(tmp_path, max_bytes=10**6)


def test_same_paper_gets_the_same_id_in_every_format() -> None:
    """arXiv ids match across API, Atom and page links; link-less page papers use the title key."""
    dumps = {
        fmt: parse_dump((DATA / name).read_bytes(), name, dt.date(2026, 7, 3))
        for fmt, name in SAMPLES.items()
    }
    ids = {fmt: {p.id for p in dump.papers} for fmt, dump in dumps.items()}
    assert {"2607.02013", "2607.02015"} <= ids["hf_api"] & ids["arxiv_atom"]
    assert "2607.02014" in ids["hf_api"] & ids["hf_page"]
    api_titles = {p.title: p for p in dumps["hf_api"].papers}
    shared = [p for p in dumps["hf_page"].papers if p.title in api_titles and p.arxiv_id is None]
    assert shared, "the samples should share a title between page and API"
    assert all(p.id == title_key(api_titles[p.title].title) for p in shared)


def test_dump_carries_decode_warnings_and_the_base_name() -> None:
    """Warnings from decoding reach the Dump, and its name is the file's base name."""
    data = ("Daily Papers\n\n" + LATIN1_ENTRY).encode("latin-1")
    dump = parse_dump(data, "/var/inbox/hf_page_2026-07-03.txt", dt.date(2026, 7, 3))
    assert dump.name == "hf_page_2026-07-03.txt"
    assert dump.warnings[0].where == "line 3"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["x.txt", "x.json", "x.atom", "x"]))
def test_arbitrary_bytes_never_crash_parse_dump(data: bytes, name: str) -> None:
    """Any bytes under any name give a Dump or an IngestError, nothing else."""
    outcome: Dump | IngestError
    try:
        outcome = parse_dump(data, name, dt.date(2026, 7, 3))
    except IngestError as e:
        outcome = e
    if isinstance(outcome, IngestError):
        assert "\n" not in str(outcome)
    else:
        dump = outcome
        assert dump.skipped == sum(w.message.endswith("; skipped") for w in dump.warnings)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(list(SAMPLES.values())),
    st.integers(min_value=0, max_value=10**6),
    st.binary(max_size=8),
)
def test_damaged_samples_never_crash_parse_dump(name: str, cut: int, junk: bytes) -> None:
    """Each sample truncated at any point and with junk appended parses or is an IngestError."""
    data = (DATA / name).read_bytes()
    damaged = data[: cut % (len(data) + 1)] + junk
    with contextlib.suppress(IngestError):
        parse_dump(damaged, name, dt.date(2026, 7, 3))
