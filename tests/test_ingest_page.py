"""The Daily Papers page text dump parser: entries, chrome, dates and every kind of damage."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import IngestError
from pipeline.ingest import parse_dump
from pipeline.ingest.hf_page import CHROME, parse
from pipeline.models import Paper
from pipeline.papers import title_key

DATA = Path(__file__).parent / "data"
DUMP_DATE = dt.date(2026, 7, 3)
HEADER = (
    "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\n"
    "byAK and the research community\n\nJul 3\n\n"
)


def entry(
    title: str,
    abstract: str = "An abstract about a method that works.",
    byline: str = "  • 3 authors",
    date: str = "Jun 2, 2026",
) -> str:
    """One entry in the page's layout."""
    return f"{title}\n\n{abstract}\n\n{byline}\n·\n{date}\n\n"


def page(*entries: str) -> str:
    return HEADER + "".join(entries)


def by_title(papers: tuple[Paper, ...]) -> dict[str, Paper]:
    return {p.title: p for p in papers}


@pytest.fixture(scope="module")
def sample() -> dict[str, Paper]:
    data = (DATA / "hf_page_2026-07-03.txt").read_bytes()
    dump = parse_dump(data, "hf_page_2026-07-03.txt", DUMP_DATE)
    assert dump.format == "hf_page"
    assert dump.warnings == ()
    return by_title(dump.papers)


def test_sample_dump_yields_every_entry_and_no_chrome(sample: dict[str, Paper]) -> None:
    """All twelve entries of the sample are read; no chrome line becomes a title."""
    assert len(sample) == 12
    assert not set(sample) & (CHROME | {"Jul 3", "Submitted by robo-curator"})
    assert all(
        p.abstract and p.source_format == "hf_page" and p.authors == () for p in sample.values()
    )


def test_authors_line_gives_count_and_organisation_line_gives_display_name(
    sample: dict[str, Paper],
) -> None:
    """``• N authors`` sets authors_count; ``Handle Display Name`` sets the display name."""
    assert (
        sample[
            "Decoding Imagined Handwriting from Intracortical Signals with Transformers"
        ].authors_count
        == 12
    )
    spiking = sample["Spiking State-Space Models for Always-On Audio"]
    assert (spiking.organization, spiking.authors_count) == ("NeuroEdge AI", None)
    quant = sample["Post-Training Quantization of Vision-Language Models to 3 Bits"]
    assert quant.organization == "Example Compute Lab"


def test_dates_with_and_without_year_and_upvotes(sample: dict[str, Paper]) -> None:
    """A year-less date is the latest one not after the dump date; a trailing number is upvotes."""
    handwriting = sample[
        "Decoding Imagined Handwriting from Intracortical Signals with Transformers"
    ]
    assert (handwriting.published, handwriting.upvotes) == (dt.date(2025, 12, 30), 3)
    grasp = sample["Diffusion Policies with Contact-Aware Guidance for Dexterous Grasping"]
    assert (grasp.published, grasp.upvotes) == (dt.date(2026, 6, 29), 0)
    pruning = sample["Pruning Attention Heads with Gradient-Free Saliency"]
    assert (pruning.published, pruning.upvotes) == (DUMP_DATE, 1)


def test_links_in_the_abstract_become_code_project_and_arxiv_ids(sample: dict[str, Paper]) -> None:
    """GitHub → code_url (trailing dot dropped), other site → project_url, arXiv link → id."""
    grasp = sample["Diffusion Policies with Contact-Aware Guidance for Dexterous Grasping"]
    assert grasp.code_url == "https://github.com/example-robotics/contact-diffusion"
    assert grasp.project_url is None
    bench = sample["A Benchmark for Long-Horizon Household Robot Tasks"]
    assert (bench.project_url, bench.code_url) == ("https://example.org/household-bench", None)
    lora = sample["Low-Rank Adapters Are Secretly Mixture-of-Experts Routers"]
    assert (lora.id, lora.arxiv_id) == ("2607.02014", "2607.02014")
    assert lora.url == "https://arxiv.org/abs/2607.02014"
    assert lora.pdf_url == "https://arxiv.org/pdf/2607.02014"


def test_paper_without_arxiv_link_is_identified_by_title_key(sample: dict[str, Paper]) -> None:
    """No arXiv id on the page: id is the title key and there is no URL to invent."""
    title = "Speculative Cascades for Low-Latency LLM Inference"
    paper = sample[title]
    assert (paper.id, paper.arxiv_id, paper.url) == (title_key(title), None, None)


def test_html_and_template_syntax_in_titles_stay_literal(sample: dict[str, Paper]) -> None:
    """``<script>`` and ``{{ 7*7 }}`` are stored exactly as written, never interpreted."""
    titles = [t for t in sample if "<script>" in t]
    assert titles == [
        "Prompt Injection via {{ 7*7 }} Templates and <script> Tags in Agent Toolchains"
    ]
    assert "<script>alert(1)</script>" in sample[titles[0]].abstract


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Jun 2", dt.date(2026, 6, 2)),
        ("Jul 3", dt.date(2026, 7, 3)),
        ("Jul 4", dt.date(2025, 7, 4)),
        ("Dec 31", dt.date(2025, 12, 31)),
        ("Feb 29", dt.date(2024, 2, 29)),
        ("Dec 31, 2024 3", dt.date(2024, 12, 31)),
    ],
)
def test_year_less_date_resolves_against_the_dump_date(written: str, expected: dt.date) -> None:
    """DESIGN.md: a year-less date is the latest such date not after the dump date."""
    result = parse(page(entry("A Paper", date=written)), DUMP_DATE)
    assert [p.published for p in result.papers] == [expected]


def test_link_paragraph_under_the_abstract_is_read_for_ids() -> None:
    """A ``Paper: https://huggingface.co/papers/…`` line under the abstract is not the abstract."""
    text = page(
        "Linked Paper\n\nThe abstract.\n\nPaper: https://huggingface.co/papers/2607.04321\n"
        "Code: https://github.com/example/linked\n\n  • 2 authors\n·\nJun 2\n"
    )
    [paper] = parse(text, DUMP_DATE).papers
    assert (paper.title, paper.abstract) == ("Linked Paper", "The abstract.")
    assert (paper.id, paper.code_url) == ("2607.04321", "https://github.com/example/linked")


def test_title_and_abstract_without_a_blank_line_between_are_split() -> None:
    """``Title`` directly followed by its abstract sentence still gives both."""
    text = page("Glued Title\nA short abstract that ends.\n\n  • 2 authors\n·\nJun 2\n")
    [paper] = parse(text, DUMP_DATE).papers
    assert (paper.title, paper.abstract) == ("Glued Title", "A short abstract that ends.")


def test_upvote_count_may_sit_on_its_own_line() -> None:
    """``Jun 2`` followed by a line ``17`` gives 17 upvotes, not an unknown line."""
    text = page("Solo\n\nText.\n\n• 2 authors\n·\nJun 2\n17\n\n", entry("Next Paper"))
    result = parse(text, DUMP_DATE)
    assert [(p.title, p.upvotes) for p in result.papers] == [("Solo", 17), ("Next Paper", 0)]
    assert result.warnings == ()


def test_empty_file_is_an_ingest_error() -> None:
    """An empty or whitespace-only file is unusable as a whole."""
    for data in (b"", b"\n \n\t\n"):
        with pytest.raises(IngestError, match="empty file"):
            parse_dump(data, "hf_page_2026-07-03.txt", DUMP_DATE)


def test_page_chrome_only_is_an_ingest_error() -> None:
    """A dump with the page's chrome and no entry says there are no entries."""
    data = (HEADER + "Submitted by someone\n").encode()
    with pytest.raises(IngestError, match="no paper entries"):
        parse_dump(data, "hf_page_2026-07-03.txt", DUMP_DATE)


def test_truncated_last_entry_is_skipped_with_its_line_and_title() -> None:
    """Good entries survive; the cut-off last one is skipped with a warning naming it."""
    text = page(entry("First Paper"), entry("Second Paper")) + "Third Paper Cut Off\n\nWe prop"
    line = text.splitlines().index("Third Paper Cut Off") + 1
    result = parse(text, DUMP_DATE)
    assert [p.title for p in result.papers] == ["First Paper", "Second Paper"]
    assert result.skipped == 1
    [warning] = result.warnings
    assert warning.where == f"line {line}"
    assert "Third Paper Cut Off" in warning.message and "incomplete" in warning.message


def test_stray_carriage_returns_do_not_break_entries() -> None:
    """A stray \\r inside a title line, CRLF lines and a lone \\r line end are all line ends."""
    text = page(entry("Robust\rParsing of Wrapped Titles"), entry("Second Paper"))
    text = text.replace("• 3 authors\n", "• 3 authors\r\n").replace(
        "Second Paper\n\n", "Second Paper\r\r"
    )
    dump = parse_dump(text.encode(), "x_2026-07-03.txt", DUMP_DATE)
    assert [p.title for p in dump.papers] == ["Robust Parsing of Wrapped Titles", "Second Paper"]
    assert all(p.authors_count == 3 for p in dump.papers)


def test_blank_line_variations_and_trailing_spaces_are_tolerated() -> None:
    """No blank lines, many blank lines and trailing spaces give the same papers."""
    tight = (
        "Tight Paper   \nA long abstract sentence. " * 1
        + "x" * 300
        + "\n  • 2 authors  \n·\nJun 2  \n"
    )
    loose = (
        "\n\n\nLoose Paper\n\n\n\nShort abstract.\n\n\n  • 4 authors\n\n·\n\nJun 1, 2026 5\n\n\n"
    )
    result = parse(page(tight, loose), DUMP_DATE)
    papers = by_title(result.papers)
    assert set(papers) == {"Tight Paper", "Loose Paper"}
    assert papers["Tight Paper"].abstract.startswith("A long abstract sentence.")
    assert (papers["Loose Paper"].authors_count, papers["Loose Paper"].upvotes) == (4, 5)
    assert result.warnings == ()


def test_title_without_abstract_is_kept_with_empty_abstract() -> None:
    """An entry with only a title above its footer is still a paper."""
    result = parse(page("Only A Title\n\n  • 1 authors\n·\nJun 2\n\n", entry("Next")), DUMP_DATE)
    assert [(p.title, p.abstract) for p in result.papers] == [
        ("Only A Title", ""),
        ("Next", "An abstract about a method that works."),
    ]


def test_unknown_line_between_entries_is_ignored_with_a_warning() -> None:
    """A line the parser does not know is reported and does not steal the next title."""
    text = page(entry("First Paper"), "Load more papers\n\n", entry("Second Paper"))
    result = parse(text, DUMP_DATE)
    assert [p.title for p in result.papers] == ["First Paper", "Second Paper"]
    assert result.skipped == 0
    [warning] = result.warnings
    assert "Load more papers" in warning.message
    assert warning.where == f"line {text.splitlines().index('Load more papers') + 1}"


def test_entry_that_lost_its_footer_is_skipped_and_neighbours_survive() -> None:
    """Title and abstract with no footer, mid-file: skipped with a warning, others intact."""
    lost = "Lost Footer Paper\n\nIts abstract.\n\n"
    result = parse(page(entry("First"), lost, entry("Third")), DUMP_DATE)
    assert [p.title for p in result.papers] == ["First", "Third"]
    assert result.skipped == 1
    assert "Lost Footer Paper" in result.warnings[0].message


def test_footer_without_title_is_skipped() -> None:
    """Two footers in a row: the second has nothing above it and is skipped with its line."""
    text = page(entry("Only Paper"), "  • 2 authors\n·\nJun 1\n\n")
    result = parse(text, DUMP_DATE)
    assert [p.title for p in result.papers] == ["Only Paper"]
    assert result.skipped == 1
    assert result.warnings[0].where == f"line {text.splitlines().index('Jun 1') + 1}"


def test_invalid_date_keeps_the_paper_without_a_published_date() -> None:
    """``Feb 30, 2025`` is repaired to no date, with a warning; the paper is kept."""
    result = parse(page(entry("Odd Date", date="Feb 30, 2025 4")), DUMP_DATE)
    [paper] = result.papers
    assert (paper.published, paper.upvotes) == (None, 4)
    assert "not a valid date" in result.warnings[0].message


def test_single_word_organisation_line_is_used_as_is() -> None:
    """An organisation line without a display name falls back to the handle."""
    result = parse(page(entry("Org Paper", byline="DeepLab")), DUMP_DATE)
    assert result.papers[0].organization == "DeepLab"


def test_abstract_of_300_kb_is_kept_whole() -> None:
    """A huge abstract does not crash the parser and is kept entirely."""
    abstract = ("Spiking networks save energy on neuromorphic chips. " * 6000).strip()
    assert len(abstract) > 300_000
    result = parse(page(entry("Huge Abstract", abstract=abstract), entry("After It")), DUMP_DATE)
    assert [p.title for p in result.papers] == ["Huge Abstract", "After It"]
    assert result.papers[0].abstract == abstract


def test_title_that_is_really_an_abstract_is_skipped() -> None:
    """A single 1,000-character line above a footer is not a believable title."""
    result = parse(page(entry("x " * 500, abstract=""), entry("Fine")), DUMP_DATE)
    assert [p.title for p in result.papers] == ["Fine"]
    assert result.skipped == 1 and "no title line" in result.warnings[0].message


def test_duplicate_entry_in_one_dump_is_kept_once() -> None:
    """The same paper twice in one page dump: the first is kept, the second skipped."""
    result = parse(
        page(entry("Same Paper", date="Jun 2 5"), entry("Same Paper", date="Jun 2 9")), DUMP_DATE
    )
    assert [(p.title, p.upvotes) for p in result.papers] == [("Same Paper", 5)]
    assert result.skipped == 1 and "duplicate" in result.warnings[0].message


PAGE_LINES = [
    "",
    "  ",
    "new",
    "Subscribe",
    "Jul 3",
    "·",
    "  • 7 authors",
    "• 1 authors",
    "ExampleLab Example Lab",
    "Mar 14, 2025 12",
    "Jun 2",
    "Feb 30, 2025",
    "Dec 31 3",
    "Submitted by x",
    "A Title About <script> and {{ 7*7 }}",
    "An abstract with https://github.com/a/b and https://arxiv.org/abs/2607.01011v2.",
    "x" * 600,
    "17",
    "²",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(PAGE_LINES), st.text(max_size=40)), max_size=60))
def test_arbitrary_page_like_text_never_crashes_the_parser(lines: list[str]) -> None:
    """Any mix of page lines and noise parses; every warning that skips is counted."""
    result = parse("\n".join(lines), DUMP_DATE)
    assert result.skipped == sum(w.message.endswith("; skipped") for w in result.warnings)
    assert all(0 < len(p.title) <= 500 for p in result.papers)
    assert len({p.id for p in result.papers}) == len(result.papers)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_only_returns_or_raises_ingest_error(text: str) -> None:
    """The page parser, through parse_dump, never raises anything but IngestError."""
    with contextlib.suppress(IngestError):
        parse_dump(text.encode("utf-8", "surrogatepass"), "fuzz.txt", DUMP_DATE)
    parse(text, DUMP_DATE)
