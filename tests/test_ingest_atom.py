"""The arXiv Atom parser: versionless ids, unwrapped text, categories and hostile XML."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.errors import IngestError
from pipeline.ingest import parse_dump
from pipeline.ingest.arxiv_atom import parse
from pipeline.models import Paper
from pipeline.papers import title_key

DATA = Path(__file__).parent / "data"
DUMP_DATE = dt.date(2026, 7, 2)
FEED = '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">{}</feed>'


def feed(*entries: str) -> str:
    return FEED.format("".join(f"<entry>{e}</entry>" for e in entries))


@pytest.fixture(scope="module")
def sample() -> dict[str, Paper]:
    dump = parse_dump((DATA / "arxiv_2026-07-02.atom").read_bytes(), "arxiv.atom", DUMP_DATE)
    assert (dump.format, dump.warnings, dump.skipped) == ("arxiv_atom", (), 0)
    return {p.id: p for p in dump.papers}


def test_sample_ids_lose_their_version(sample: dict[str, Paper]) -> None:
    """``http://arxiv.org/abs/2607.02021v3`` is paper 2607.02021, linked without a version."""
    assert sorted(sample) == ["2607.02013", "2607.02015", "2607.02020", "2607.02021", "2607.02022"]
    paper = sample["2607.02021"]
    assert paper.arxiv_id == "2607.02021"
    assert (paper.url, paper.pdf_url) == (
        "https://arxiv.org/abs/2607.02021",
        "https://arxiv.org/pdf/2607.02021",
    )


def test_wrapped_titles_and_summaries_are_joined(sample: dict[str, Paper]) -> None:
    """Line wrapping inside <title> and <summary> collapses to single spaces; &amp; is &."""
    assert sample["2607.02021"].title == (
        "Federated Fine-Tuning of Foundation Models under Differential Privacy & Client Drift"
    )
    abstract = sample["2607.02013"].abstract
    assert "\n" not in abstract and "  " not in abstract
    assert abstract.startswith(
        "On-device speech recognisers must be small, yet most frames are easy. We distil a large"
    )


def test_authors_categories_and_dates(sample: dict[str, Paper]) -> None:
    """Authors in order, primary category first then the rest once, published as a date."""
    paper = sample["2607.02013"]
    assert paper.authors == ("Olga Petrenko", "Samuel Osei", "Haruto Kimura")
    assert paper.authors_count == 3
    assert paper.categories == ("cs.CL", "eess.AS")
    assert paper.published == dt.date(2026, 6, 30)
    assert paper.upvotes == 0 and paper.source_format == "arxiv_atom"


def test_code_link_in_the_comment_becomes_code_url(sample: dict[str, Paper]) -> None:
    """``<arxiv:comment>Code: https://github.com/…`` fills code_url."""
    assert sample["2607.02022"].code_url == "https://github.com/example-climate/gns-downscale"
    assert sample["2607.02020"].code_url is None


def test_billion_laughs_is_refused_before_parsing() -> None:
    """A DOCTYPE with entity declarations is an IngestError, not an expansion."""
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        + feed("<title>&lol2;</title>")
    )
    with pytest.raises(IngestError, match="DOCTYPE"):
        parse_dump(bomb.encode(), "bomb.atom", DUMP_DATE)


def test_external_entity_declaration_is_refused() -> None:
    """An ENTITY pointing at a local file never gets the chance to be read."""
    xxe = '<!DOCTYPE feed [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + feed("<title>&x;</title>")
    with pytest.raises(IngestError, match="entity expansion guard"):
        parse(xxe, DUMP_DATE)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (feed("<title>Cut off</title>")[:-20], "invalid or truncated XML"),
        ("<feed><entry><title>a</entry></feed>", "invalid or truncated XML"),
        ('<rss version="2.0"><channel/></rss>', "root is <rss>, not an Atom <feed>"),
    ],
)
def test_broken_or_foreign_xml_is_an_ingest_error(text: str, reason: str) -> None:
    """Truncated, mismatched or non-Atom XML makes the whole file unusable, in one line."""
    with pytest.raises(IngestError, match=reason) as caught:
        parse(text, DUMP_DATE)
    assert "\n" not in str(caught.value)


def test_arxiv_api_error_feed_is_an_ingest_error() -> None:
    """The API's one-entry "Error" feed is reported with its message, not stored as a paper."""
    error = feed(
        "<id>http://arxiv.org/api/errors#incorrect_id_format_for_1234</id><title>Error</title>"
        "<summary>incorrect id format for 1234</summary>"
    )
    with pytest.raises(IngestError, match=r"arXiv API returned an error.*incorrect id format"):
        parse(error, DUMP_DATE)


def test_empty_feed_has_no_papers_and_is_an_ingest_error() -> None:
    """A feed without entries gives parse_dump nothing to store."""
    with pytest.raises(IngestError, match="no paper entries found in this arXiv Atom feed"):
        parse_dump(feed().encode(), "arxiv.atom", DUMP_DATE)


def test_entry_without_title_is_skipped_and_others_kept() -> None:
    """An entry with no <title> is skipped as ``entry N``; its neighbours are papers."""
    result = parse(
        feed(
            "<id>http://arxiv.org/abs/2607.09001v1</id><title>Kept</title>",
            "<id>http://arxiv.org/abs/2607.09002v1</id>",
        ),
        DUMP_DATE,
    )
    assert [p.id for p in result.papers] == ["2607.09001"]
    assert result.skipped == 1
    assert str(result.warnings[0]).startswith(
        "entry 2: 'http://arxiv.org/abs/2607.09002v1' has no <title>"
    )


def test_old_style_id_falls_back_to_title_key_and_keeps_its_url() -> None:
    """``hep-th/9901001v1`` is not a new-style id: title key, the feed's own link, a warning."""
    result = parse(
        feed(
            "<id>http://arxiv.org/abs/hep-th/9901001v1</id><title>Strings</title>"
            '<link href="http://arxiv.org/pdf/hep-th/9901001v1" title="pdf"/>'
        ),
        DUMP_DATE,
    )
    [paper] = result.papers
    assert (paper.id, paper.arxiv_id) == (title_key("Strings"), None)
    assert (paper.url, paper.pdf_url) == (
        "http://arxiv.org/abs/hep-th/9901001v1",
        "http://arxiv.org/pdf/hep-th/9901001v1",
    )
    assert "not a new-style arXiv id" in result.warnings[0].message


def test_escaped_markup_in_titles_is_kept_as_literal_text() -> None:
    """``&lt;script&gt;`` in the feed is the literal text ``<script>`` in the title."""
    result = parse(
        feed("<id>http://arxiv.org/abs/2607.09003v2</id><title>&lt;script&gt; {{ 7*7 }}</title>"),
        DUMP_DATE,
    )
    assert result.papers[0].title == "<script> {{ 7*7 }}"


def test_bad_published_date_is_left_empty_with_a_warning() -> None:
    """A published value that is not ISO is repaired to no date, the paper is kept."""
    result = parse(
        feed("<id>2607.09004v1</id><title>T</title><published>yesterday</published>"), DUMP_DATE
    )
    assert result.papers[0].published is None
    assert (
        str(result.warnings[0]) == "entry 1: published 'yesterday' is not an ISO date; left empty"
    )


def test_a_doctype_naming_an_external_dtd_is_refused() -> None:
    """The Atom parser goes through defusedxml: any DOCTYPE is refused, external ones too."""
    external = '<!DOCTYPE\n  feed SYSTEM "http://example.org/x.dtd">'
    spaced = '<?xml version="1.0"?>\n' + external + feed("")
    with pytest.raises(IngestError, match="entity expansion guard"):
        parse(spaced, dt.date(2026, 7, 3))
