"""The two evaluation sets the matching benchmark reads, in one shape.

    synthetic   tests/data/eval: 88 short abstracts and 17 queries written with the first
                matcher (grades 0-3). A training-set figure: kept to show the gap.
    real        benchmarks/data/eval_real: 260 real Daily Papers items over seven days and 30
                reader-written interests, graded 0-2 by pooling (see its README.md).

A paper that no judge saw counts as grade 0, as usual for pooled judgments.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.models import Paper, Profile

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ROOT / "tests" / "data" / "eval"
REAL = ROOT / "benchmarks" / "data" / "eval_real"


@dataclass(frozen=True)
class EvalQuery:
    id: str
    profile: Profile
    judgments: dict[str, int]
    kind: str = ""
    rubric: str = ""


@dataclass(frozen=True)
class EvalSet:
    name: str
    papers: list[Paper]
    queries: list[EvalQuery]
    relevant: int  # the grade from which a paper counts as relevant (R-precision, empty days)
    days: dict[str, str] = field(default_factory=dict)  # paper id -> dump day (real set only)

    def by_day(self) -> dict[str, list[Paper]]:
        """The papers of each day, in day order; one slice of everything when days are unknown."""
        if not self.days:
            return {"all": list(self.papers)}
        out: dict[str, list[Paper]] = {}
        for p in self.papers:
            out.setdefault(self.days[p.id], []).append(p)
        return dict(sorted(out.items()))


def _profile(q: dict[str, object]) -> Profile:
    return Profile(
        topics=tuple(q.get("topics", ())),  # type: ignore[arg-type]
        interests=str(q.get("interests", "")),
        authors=tuple(q.get("authors", ())),  # type: ignore[arg-type]
    )


def load_synthetic(folder: Path = SYNTHETIC) -> EvalSet:
    papers_data = tomllib.loads((folder / "papers.toml").read_text(encoding="utf-8"))
    papers = [Paper(source_format="hf_api", **p) for p in papers_data["paper"]]
    queries_data = tomllib.loads((folder / "queries.toml").read_text(encoding="utf-8"))
    queries = [
        EvalQuery(id=q["id"], profile=_profile(q), judgments=dict(q["judgments"]))
        for q in queries_data["query"]
    ]
    return EvalSet("synthetic", papers, queries, relevant=2)


def real_papers(folder: Path = REAL) -> tuple[list[Paper], dict[str, str]]:
    """The real papers as paperboy would store them from an API dump, and each one's day."""
    items = json.loads((folder / "papers.json").read_text(encoding="utf-8"))["papers"]
    papers = [
        Paper(
            id=item["id"],
            arxiv_id=item["id"],
            title=item["title"],
            abstract=item["abstract"],
            upvotes=item["upvotes"] or 0,
            published=dt.date.fromisoformat(item["day"]),
            url=item["hf_link"],
            source_format="hf_api",
        )
        for item in items
    ]
    return papers, {item["id"]: item["day"] for item in items}


def real_queries(folder: Path = REAL) -> list[EvalQuery]:
    """The reader-written queries with their grades (none yet while the pool is being graded)."""
    data = tomllib.loads((folder / "queries.toml").read_text(encoding="utf-8"))
    grades: dict[str, dict[str, int]] = {}
    judged = folder / "judgments.toml"
    if judged.exists():
        grades = tomllib.loads(judged.read_text(encoding="utf-8"))["grades"]
    return [
        EvalQuery(
            id=q["id"],
            profile=_profile(q),
            judgments=dict(grades.get(q["id"], {})),
            kind=q.get("kind", ""),
            rubric=q.get("rubric", ""),
        )
        for q in data["query"]
    ]


def load_real(folder: Path = REAL) -> EvalSet:
    papers, days = real_papers(folder)
    return EvalSet("real", papers, real_queries(folder), relevant=2, days=days)
