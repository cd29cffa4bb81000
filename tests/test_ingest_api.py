"""The Daily Papers API JSON parser: field fallbacks, withdrawn papers and bad items."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pipeline.errors import IngestError
from pipeline.ingest import parse_dump
from pipeline.ingest.hf_api import parse
from pipeline.models import Paper
from pipeline.papers import title_key

DATA = Path(__file__).parent / "data"
DUMP_DATE = dt.date(2026, 7, 2)


def item(**paper: object) -> dict[str, object]:
    """An API item with the given ``paper`` fields (id and title filled in when absent)."""
    fields: dict[str, object] = {"id": "2607.05555", "title": "A Good Paper", **paper}
    return {"paper": fields, "title": fields["title"], "numComments": 0}


def run(items: object) -> tuple[tuple[Paper, ...], list[str], int]:
    result = parse(json.dumps(items), DUMP_DATE)
    return result.papers, [str(w) for w in result.warnings], result.skipped


@pytest.fixture(scope="module")
def sample() -> dict[str, Paper]:
    dump = parse_dump((DATA / "hf_api_2026-07-02.json").read_bytes(), "hf_api.json", DUMP_DATE)
    assert dump.format == "hf_api"
    assert dump.skipped == 1
    [withdrawn] = dump.warnings
    assert withdrawn.where == "item 6" and "withdrawn on 2026-07-02" in withdrawn.message
    return {p.id: p for p in dump.papers}


def test_sample_keeps_every_item_but_the_withdrawn_one(sample: dict[str, Paper]) -> None:
    """Seven of eight items are papers; the withdrawn 2607.02017 is not among them."""
    assert len(sample) == 7
    assert "2607.02017" not in sample
    assert all(p.source_format == "hf_api" for p in sample.values())


def test_paper_fields_are_preferred_and_mapped(sample: dict[str, Paper]) -> None:
    """paper.* fields map onto Paper: repo, stars, project page, organisation, authors, date."""
    paper = sample["2607.02011"]
    assert paper.code_url == "https://github.com/example-serving/spec-cascades"
    assert (paper.github_stars, paper.upvotes) == (388, 44)
    assert paper.project_url == "https://example.org/spec-cascades"
    assert paper.organization == "Example Serving Group"
    assert paper.authors[:2] == ("Ines Carvalho", "Magnus Berg")
    assert paper.authors_count == len(paper.authors) == 6
    # paper.publishedAt (the arXiv date) wins over the item's submission time.
    assert paper.published == dt.date(2026, 7, 1)
    assert paper.keywords == ("speculative decoding", "LLM inference", "cascade", "latency")
    assert paper.url == "https://arxiv.org/abs/2607.02011"


def test_fields_only_at_top_level_are_used(sample: dict[str, Paper]) -> None:
    """ai_summary, ai_keywords and organization found only on the item are still read."""
    lora = sample["2607.02014"]
    assert (
        lora.ai_summary
        == "Task adapters merge into a mixture-of-experts layer with a closed-form router."
    )
    assert lora.keywords == ("LoRA", "mixture of experts", "model merging")
    assert sample["2607.02019"].organization == "examplecache"  # no fullname: the name


def test_item_without_paper_object_is_read_from_top_level(sample: dict[str, Paper]) -> None:
    """An item that carries every field itself, with no ``paper``, is a paper too."""
    paper = sample["2607.02016"]
    assert paper.title == "Classifier-Free Guidance Without the Extra Pass"
    assert paper.authors == ("Elena Moretti", "Yusuf Kaya", "Grace Liu")
    assert (paper.upvotes, paper.published) == (33, dt.date(2026, 6, 29))


def test_truncated_json_is_an_ingest_error() -> None:
    """A file cut off mid-array is unusable as a whole, and the message says truncated."""
    text = (DATA / "hf_api_2026-07-02.json").read_text()
    with pytest.raises(IngestError, match="truncated JSON") as caught:
        parse(text[: len(text) // 2], DUMP_DATE)
    assert "\n" not in str(caught.value)


def test_invalid_json_between_items_names_line_and_column() -> None:
    """Damage between the items (no comma) makes the file unusable, reported with its place."""
    with pytest.raises(IngestError, match="invalid JSON at line 2 column 18: Expecting ','"):
        parse('[\n  {"title": "x"} {"title": "y"}\n]', DUMP_DATE)


def test_a_5000_digit_number_drops_its_item_only() -> None:
    """Python refuses to convert such an integer; that item is skipped, named by its id."""
    text = (
        '[{"paper": {"id": "2607.00002", "title": "Huge", "upvotes": ' + "9" * 5000 + "}},"
        ' {"paper": {"id": "2607.00003", "title": "Fine", "upvotes": 3}}]'
    )
    parsed = parse(text, DUMP_DATE)
    assert [(p.id, p.upvotes) for p in parsed.papers] == [("2607.00003", 3)]
    (warning,) = parsed.warnings
    assert warning.where == "item 1"
    assert "more digits" in warning.message and "2607.00002" in warning.message


def test_a_syntax_error_inside_an_item_drops_that_item_only() -> None:
    """An item that does not decode is skipped with its place and id; the others are read."""
    text = '[\n  {"id": "2607.00001", "title": "x",, "n": 1},\n  {"title": "Kept"}\n]'
    parsed = parse(text, DUMP_DATE)
    assert [p.title for p in parsed.papers] == ["Kept"]
    assert parsed.skipped == 1
    (warning,) = parsed.warnings
    assert warning.where == "item 1"
    assert "invalid JSON at line 2 column" in warning.message
    assert "2607.00001" in warning.message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("42", "top level is a number"),
        ('"papers"', "top level is a string"),
        ('{"meta": {"count": 1}}', "without a list of papers"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_json_that_is_not_a_list_of_items_is_an_ingest_error(text: str, reason: str) -> None:
    """Numbers, strings, objects without a list, bombs: IngestError with a one-line reason."""
    with pytest.raises(IngestError, match=reason):
        parse(text, DUMP_DATE)


def test_a_list_wrapped_in_an_object_is_accepted() -> None:
    """``{"papers": [...]}`` is read like the bare array."""
    result = parse(json.dumps({"papers": [item()]}), DUMP_DATE)
    assert [p.id for p in result.papers] == ["2607.05555"]


def test_numeric_string_upvotes_are_coerced_with_a_warning() -> None:
    """``"upvotes": "12"`` becomes 12, and the warning names the item."""
    papers, warnings, skipped = run([item(upvotes="12", githubStars="1,024")])
    assert (papers[0].upvotes, papers[0].github_stars, skipped) == (12, 1024, 0)
    assert warnings == [
        "item 1: upvotes '12' is a string; read as 12",
        "item 1: githubStars '1,024' is a string; read as 1024",
    ]


@pytest.mark.parametrize(
    "bad", ["many", -3, 2.5, True, [1], {"n": 1}, 1e999, 2**63, "00099999999999999999"]
)
def test_non_numeric_upvotes_become_zero_with_a_warning(bad: object) -> None:
    """An upvote count that is not a whole number ≥ 0 is 0, never a crash."""
    papers, warnings, _ = run([item(upvotes=bad)])
    assert papers[0].upvotes == 0
    assert len(warnings) == 1 and warnings[0].startswith("item 1: upvotes")


def test_items_missing_id_and_title_are_skipped_and_named() -> None:
    """No id and no title: skipped as ``item N``; the good items around it are kept."""
    items = [
        item(id="2607.00001", title="Kept One"),
        {"paper": {"summary": "orphan"}},
        item(id="2607.00002", title="Kept Two"),
    ]
    papers, warnings, skipped = run(items)
    assert [p.id for p in papers] == ["2607.00001", "2607.00002"]
    assert skipped == 1
    assert warnings == ["item 2: has neither an id nor a title; skipped"]


def test_item_with_id_but_no_title_is_skipped() -> None:
    """A paper cannot be shown without a title, even with an id."""
    papers, warnings, skipped = run([{"paper": {"id": "2607.00003"}}])
    assert (papers, skipped) == ((), 1)
    assert warnings == ["item 1: paper '2607.00003' has no title; skipped"]


def test_item_without_id_is_identified_by_its_title() -> None:
    """No arXiv id: the title key is the id, as on page dumps, so the two merge."""
    papers, warnings, _ = run([{"paper": {"title": "Untethered Paper"}}])
    assert (papers[0].id, papers[0].arxiv_id, papers[0].url) == (
        title_key("Untethered Paper"),
        None,
        None,
    )
    assert warnings == []


def test_numeric_id_is_not_trusted() -> None:
    """A JSON number id (2607.0101 lost its zero) falls back to the title key with a warning."""
    papers, warnings, _ = run([item(id=2607.0101, title="Numeric Id")])
    assert papers[0].id == title_key("Numeric Id")
    assert warnings == ["item 1: id is a number, not a string; identified by title"]


def test_null_paper_falls_back_to_top_level_fields() -> None:
    """``"paper": null`` with id and title on the item still yields the paper."""
    papers, _, _ = run([{"paper": None, "id": "2607.04444", "title": "Top Level", "upvotes": 4}])
    assert [(p.id, p.title, p.upvotes) for p in papers] == [("2607.04444", "Top Level", 4)]


def test_null_paper_with_nothing_usable_is_skipped() -> None:
    """``"paper": null`` and no id or title on the item: skipped, saying paper is null."""
    papers, warnings, skipped = run([{"paper": None, "numComments": 3}, item()])
    assert len(papers) == 1 and skipped == 1
    assert warnings == [
        "item 1: 'paper' is null and the item has neither an id nor a title; skipped"
    ]


def test_paper_that_is_not_an_object_is_reported_and_top_level_used() -> None:
    """``"paper": "oops"`` is a warning; the item's own id and title still work."""
    papers, warnings, _ = run([{"paper": "oops", "id": "2607.04445", "title": "Still Here"}])
    assert [p.id for p in papers] == ["2607.04445"]
    assert warnings == ["item 1: 'paper' is a string, not an object; using the item's fields"]


def test_non_object_items_are_skipped_and_named() -> None:
    """Numbers, strings, arrays and nulls in the list are skipped one by one."""
    papers, warnings, skipped = run([42, "text", item(), [], None])
    assert len(papers) == 1 and skipped == 4
    assert [w.split(":")[0] for w in warnings] == ["item 1", "item 2", "item 4", "item 5"]
    assert warnings[0] == "item 1: is a JSON number, not an object; skipped"


def test_wrong_types_in_optional_fields_are_ignored_with_warnings() -> None:
    """Bad authors, keywords, summary and URLs are dropped; the paper is kept."""
    papers, warnings, skipped = run(
        [
            item(
                authors="Ann",
                ai_keywords=7,
                summary=["x"],
                githubRepo="not a url",
                publishedAt="soon",
            )
        ]
    )
    [paper] = papers
    assert (paper.authors, paper.keywords, paper.abstract, paper.code_url, paper.published) == (
        (),
        (),
        "",
        None,
        None,
    )
    assert skipped == 0 and len(warnings) == 5


def test_html_and_template_syntax_in_titles_stay_literal() -> None:
    """Markup and template syntax are text: stored exactly, whitespace collapsed."""
    title = "  <script>alert('x')</script>\n {{ 7*7 }} &amp; Friends "
    papers, _, _ = run([item(title=title)])
    assert papers[0].title == "<script>alert('x')</script> {{ 7*7 }} &amp; Friends"


def test_lone_surrogates_and_control_characters_do_not_crash() -> None:
    """``\\ud800`` and NUL escapes in JSON strings are cleaned, not fatal."""
    papers, _, _ = run([item(title="Bad \ud800 Char\u0000s")])
    assert papers[0].title == "Bad \ufffd Chars"


def test_empty_array_has_no_papers_and_is_an_ingest_error() -> None:
    """``[]`` gives parse_dump nothing to store, which it reports for the whole file."""
    with pytest.raises(IngestError, match="no paper entries found in this Daily Papers API JSON"):
        parse_dump(b"[]", "hf_api_2026-07-02.json", DUMP_DATE)


def test_all_items_withdrawn_is_a_dump_with_no_papers_not_an_error() -> None:
    """A well-formed file whose items were all skipped is a valid, empty dump with warnings."""
    data = json.dumps([item(withdrawnAt="2026-07-02T10:00:00Z")]).encode()
    dump = parse_dump(data, "hf_api_2026-07-02.json", DUMP_DATE)
    assert (dump.papers, dump.skipped) == ((), 1)
