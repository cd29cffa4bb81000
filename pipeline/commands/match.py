"""``paperboy match`` and ``paperboy topics``: try a profile on papers, list the topic catalog."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from pipeline.commands.common import console, fail, load, store_for
from pipeline.config import Config
from pipeline.errors import IngestError, MatchError
from pipeline.ingest import read_dump
from pipeline.matching.topics import Catalog, load_catalog
from pipeline.models import Paper, Profile, ScoredPaper

if TYPE_CHECKING:
    from pipeline.embedding import Vectors  # numpy: kept off the other commands and `--help`

ON_THE_FLY = 256  # papers `match` embeds itself at most; any others match by words alone


def match(
    interest: Annotated[
        str,
        typer.Option(
            "--interest", "-i", help="Free-text interest, e.g. 'KV cache, speculative decoding'."
        ),
    ] = "",
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", "-t", help="Topic slug (repeatable); see `paperboy topics`."),
    ] = None,
    author: Annotated[
        list[str] | None,
        typer.Option("--author", "-a", help="Favourite author to boost (repeatable)."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", "-x", help="Drop papers with this keyword (repeatable)."),
    ] = None,
    dump: Annotated[
        Path | None,
        typer.Option(
            "--dump", exists=True, dir_okay=False, help="Rank this dump file (parsed, not stored)."
        ),
    ] = None,
    date: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Dump date when the file name has none."),
    ] = None,
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="How many papers to show.")] = 10,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array sorted by score.")
    ] = False,
) -> None:
    """Rank papers for an ad-hoc profile, with the reasons each one matched.

    Without --dump, ranks the papers stored in the last 7 days. A paper needs some relevance
    to appear; upvotes only lift relevant papers.

    Example: paperboy match --interest "KV cache, speculative decoding" --topic llm-inference
    --dump var/inbox/hf_daily_papers_2026-07-03.txt --top 5
    """
    # numpy, the scorers and the store: kept off the other commands and `--help`
    from pipeline.matching.match import rank

    config = load()
    if not (interest.strip() or topic or author):
        fail("nothing to match: give --interest TEXT, --topic SLUG or --author NAME")
    try:
        profile = Profile(
            topics=tuple(topic or ()),
            interests=interest,
            authors=tuple(author or ()),
            exclude=tuple(exclude or ()),
        )
    except ValidationError as e:
        fail(f"invalid profile: {e.errors()[0]['msg']}")
    catalog = load_catalog(config.topics)
    papers, vectors = _papers_and_vectors(config, profile, catalog, dump, date)
    try:
        ranked = rank(papers, profile, catalog, config.match, vectors=vectors)
    except MatchError as e:
        fail(str(e))
    shown = ranked[:top]
    if as_json:
        typer.echo(json.dumps([_public(sp) for sp in shown], indent=2, ensure_ascii=False))
        return
    _table(shown, matched=len(ranked), total=len(papers))


def _papers_and_vectors(
    config: Config,
    profile: Profile,
    catalog: Catalog,
    dump: Path | None,
    date: dt.datetime | None,
) -> tuple[list[Paper], Vectors | None]:
    """The papers to rank (the dump's, or the store's last 7 days) and their vectors.

    The ad-hoc texts (and papers the tick has not reached) get vectors now, in memory:
    `match` stores nothing.
    """
    from pipeline.embedding import profile_texts
    from pipeline.embedding.backfill import on_the_fly
    from pipeline.embedding.runtime import shared

    texts = profile_texts(profile, catalog.topics)
    embedder = shared().get(config.meaning)
    stored: Vectors | None = None
    if dump is not None:
        try:
            parsed = read_dump(
                dump, max_bytes=config.ingest.max_file_bytes, date=date.date() if date else None
            )
        except IngestError as e:
            fail(f"{dump}: {e}", code=1)
        papers = list(parsed.papers)
    else:
        with store_for(config) as store:
            papers = store.papers.recent(days=7)
            if embedder is not None:
                stored = store.vectors.for_matching(embedder.name, papers, texts)
    if embedder is None:
        return papers, None
    return papers, on_the_fly(embedder, papers, texts, limit=ON_THE_FLY, stored=stored)


def _public(sp: ScoredPaper) -> dict[str, object]:
    """The JSON shape of one ranked paper."""
    p = sp.paper
    return {
        "id": p.id,
        "title": p.title,
        "score": sp.score,
        "reasons": [r.text for r in sp.reasons],
        # The same reasons as data: kind, label, quoted terms (and upvotes for "trending").
        "reason_data": [r.model_dump(mode="json") for r in sp.reasons],
        "url": p.url,
        "upvotes": p.upvotes,
        "authors": list(p.authors),
    }


def _table(shown: list[ScoredPaper], matched: int, total: int) -> None:
    out = console(highlight=True)
    if not total:
        out.print("No papers to rank: ingest a dump first, or pass --dump FILE.")
        return
    if not shown:
        out.print(f"No paper matched this profile among {total} papers.", highlight=False)
        return
    table = Table(caption=f"{matched} of {total} papers matched; showing {len(shown)}")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("paper", overflow="fold")
    table.add_column("why", overflow="fold")
    for n, sp in enumerate(shown, 1):
        # Titles and reasons come from dumps: Text, so "[...]" in them is never Rich markup.
        paper = Text(sp.paper.title + "\n") + Text(sp.paper.id, style="dim")
        table.add_row(str(n), f"{sp.score:.3f}", paper, Text("\n".join(r.text for r in sp.reasons)))
    out.print(table)


def topics(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalog as JSON.")] = False,
) -> None:
    """List the topic catalog: built-in topics plus config.toml's `[topics.<slug>]` tables.

    Example: paperboy topics --json
    """
    config = load()
    catalog = load_catalog(config.topics)
    if as_json:
        data = [
            {
                "slug": slug,
                "title": catalog[slug].title,
                "description": catalog[slug].description,
                "keywords": list(catalog[slug].keywords),
                "source": "config" if slug in config.topics else "built-in",
            }
            for slug in catalog
        ]
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    table = Table(caption=f"{len(catalog)} topics")
    for column in ("slug", "title", "keywords"):
        table.add_column(column, overflow="fold")
    for slug in catalog:
        t = catalog[slug]
        table.add_row(slug, Text(t.title), Text(", ".join(t.keywords)))
    console(highlight=True).print(table)
