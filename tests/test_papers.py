"""Paper identity and merge rules: ids, re-keying to an arXiv id, which field wins."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from pipeline.models import Dump, Paper
from pipeline.papers import (
    bare_arxiv_id,
    dump_id,
    merge_dump,
    merge_paper,
    normalise_title,
    paper_id,
    title_key,
)

DAY1 = dt.date(2026, 7, 2)
DAY2 = dt.date(2026, 7, 3)


def paper(pid: str | None, title: str, **kw: object) -> Paper:
    fields: dict[str, object] = {"source_format": "hf_api", "abstract": "An abstract."}
    fields.update(kw)
    return Paper(id=pid or title_key(title), arxiv_id=pid, title=title, **fields)


def dump(day: dt.date, *papers: Paper) -> Dump:
    return Dump(
        id=dump_id(str(day).encode()), name="d.json", format="hf_api", dump_date=day, papers=papers
    )


def test_arxiv_ids_lose_their_version_and_url() -> None:
    """Versions and arxiv.org links reduce to the bare id; anything else is not an id."""
    assert bare_arxiv_id("2607.01011v2") == "2607.01011"
    assert bare_arxiv_id("http://arxiv.org/abs/2607.01011v3") == "2607.01011"
    assert bare_arxiv_id("https://arxiv.org/pdf/2607.01011.pdf") == "2607.01011"
    assert bare_arxiv_id("not an id") is None
    assert bare_arxiv_id(None) is None


def test_title_key_ignores_case_punctuation_and_spacing() -> None:
    """Titles that differ only in case, punctuation or spaces share one key."""
    assert normalise_title("Graph  Diffusion: Priors!") == "graph diffusion priors"
    assert title_key("Graph Diffusion: Priors") == title_key("graph   diffusion priors")
    assert title_key("x").startswith("t:") and len(title_key("x")) == 18
    assert paper_id("2607.01011", "x") == "2607.01011"
    assert paper_id(None, "x") == title_key("x")


def test_merge_paper_fills_gaps_and_keeps_richer_abstract() -> None:
    """Merging fills missing fields and prefers the longer abstract."""
    old = paper(None, "X", abstract="Short", code_url=None, source_format="hf_page")
    new = paper("2607.00006", "X", abstract="Short but longer", code_url="https://github.com/x/y")
    merged = merge_paper(old, new, new_is_newer=True)
    assert merged.id == "2607.00006" and merged.code_url == "https://github.com/x/y"
    assert merged.abstract == "Short but longer"


def test_merge_paper_keeps_the_first_author_list_and_unions_keywords() -> None:
    """Author lists are complete per source (first wins); keyword lists are unioned in order."""
    old = paper("2607.00007", "X", authors=("A", "B"), keywords=("snn",))
    new = paper("2607.00007", "X", authors=("C",), keywords=("llm", "snn"))
    merged = merge_paper(old, new, new_is_newer=True)
    assert merged.authors == ("A", "B")
    assert merged.keywords == ("snn", "llm")


def test_upvotes_follow_the_newer_sighting() -> None:
    """The newer dump's upvote count wins, even when lower; an older one never overwrites."""
    old = paper("2607.00008", "X", upvotes=99)
    new = paper("2607.00008", "X", upvotes=5)
    assert merge_paper(old, new, new_is_newer=True).upvotes == 5
    assert merge_paper(old, new, new_is_newer=False).upvotes == 99


def test_title_keyed_paper_is_renamed_when_it_learns_its_arxiv_id() -> None:
    """A stored page-dump paper merges by title with an API sighting and takes its arXiv id."""
    page = paper(None, "Graph Diffusion Priors: for Protein Pockets", source_format="hf_page")
    api = paper("2607.04444", "graph diffusion priors for protein pockets", upvotes=30)
    plan = merge_dump({page.id: page}, {page.id: DAY1}, dump(DAY2, api))
    assert plan.renamed == {page.id: "2607.04444"}
    assert set(plan.papers) == {"2607.04444"}
    assert plan.fresh == set() and plan.merged == {"2607.04444"}
    assert plan.as_of["2607.04444"] == DAY2


def test_same_title_with_different_arxiv_ids_stays_apart() -> None:
    """Two arXiv papers that share a title are two records."""
    plan = merge_dump(
        {}, {}, dump(DAY1, paper("2607.00003", "Survey"), paper("2607.00004", "Survey"))
    )
    assert plan.fresh == {"2607.00003", "2607.00004"}


def test_a_paper_listed_twice_in_one_dump_is_one_record() -> None:
    """Duplicates inside one dump merge in memory: one fresh id."""
    p = paper("2607.00002", "Twice")
    plan = merge_dump({}, {}, dump(DAY1, p, p))
    assert plan.fresh == {"2607.00002"} and plan.merged == set()


_titles = st.text(alphabet="abc XYZ:-", min_size=1, max_size=12).filter(lambda t: t.strip(" :-"))
_ids = st.one_of(st.none(), st.sampled_from(["2607.00001", "2607.00002", "2607.00003"]))


@given(
    st.lists(st.tuples(_ids, _titles), max_size=8), st.lists(st.tuples(_ids, _titles), max_size=8)
)
def test_merging_never_duplicates_and_is_deterministic(
    first: list[tuple[str | None, str]], second: list[tuple[str | None, str]]
) -> None:
    """After two dumps no arXiv id appears twice, every touched id is known, and the same
    input gives the same plan."""
    one = merge_dump({}, {}, dump(DAY1, *(paper(i, t) for i, t in first)))
    stored = {k: v for k, v in one.papers.items()}
    two = merge_dump(stored, one.as_of, dump(DAY2, *(paper(i, t) for i, t in second)))
    again = merge_dump(stored, one.as_of, dump(DAY2, *(paper(i, t) for i, t in second)))
    assert two.papers == again.papers and two.renamed == again.renamed
    arxiv = [p.arxiv_id for p in two.papers.values() if p.arxiv_id]
    assert len(arxiv) == len(set(arxiv))
    assert two.touched <= set(two.papers)
    assert all(p.id == k for k, p in two.papers.items())
