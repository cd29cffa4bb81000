"""Text analysis shared by papers and queries: tokenise, stem, expand acronyms, find phrases.

The same ``analyze`` runs on paper fields and on interests, topic keywords and exclusions, so
whatever one side says, the other side meets it:

    "SNNs" ─┐                                    unigrams  spike, neural, network
            ├─▶ spike neural network + =snn ──▶  bigrams   "spike neural", "neural network"
    "spiking neural networks" ─┘                 concepts  =snn  (the whole phrase, once)

An acronym is replaced by its expansion's stems, and every occurrence of an expansion also
yields a concept term (``=snn``), which acts as an exact whole-phrase match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

# Acronym → expansions. The first expansion replaces the acronym; every expansion yields the
# concept. Only acronyms that are unambiguous in AI papers belong here ("AD", "CV" do not).
ACRONYMS: dict[str, tuple[str, ...]] = {
    "llm": ("large language model",),
    "mllm": ("multimodal large language model",),
    "vlm": ("vision language model", "visual language model"),
    "lm": ("language model",),
    "snn": ("spiking neural network", "spiking network"),
    "ann": ("artificial neural network",),
    "bci": ("brain computer interface", "brain machine interface"),
    "eeg": ("electroencephalography", "electroencephalogram"),
    "ecog": ("electrocorticography",),
    "fmri": ("functional magnetic resonance imaging",),
    "mri": ("magnetic resonance imaging",),
    "ct": ("computed tomography",),
    "nas": ("neural architecture search",),
    "moe": ("mixture of experts",),
    "rag": ("retrieval augmented generation",),
    "rl": ("reinforcement learning",),
    "marl": ("multi agent reinforcement learning",),
    "rlhf": ("reinforcement learning from human feedback",),
    "dpo": ("direct preference optimization",),
    "ppo": ("proximal policy optimization",),
    "grpo": ("group relative policy optimization",),
    "ssm": ("state space model",),
    "kv": ("key value",),
    "gnn": ("graph neural network",),
    "gcn": ("graph convolutional network",),
    "gat": ("graph attention network",),
    "cnn": ("convolutional neural network",),
    "rnn": ("recurrent neural network",),
    "vit": ("vision transformer",),
    "nerf": ("neural radiance field",),
    "3dgs": ("3d gaussian splatting",),
    "gan": ("generative adversarial network",),
    "vae": ("variational autoencoder",),
    "lora": ("low rank adaptation",),
    "peft": ("parameter efficient fine tuning",),
    "sft": ("supervised fine tuning",),
    "ptq": ("post training quantization",),
    "qat": ("quantization aware training",),
    "kd": ("knowledge distillation",),
    "asr": ("automatic speech recognition", "speech recognition"),
    "tts": ("text to speech",),
    "cot": ("chain of thought",),
    "vqa": ("visual question answering",),
    "qa": ("question answering",),
    "ocr": ("optical character recognition",),
    "sae": ("sparse autoencoder",),
    "pde": ("partial differential equation",),
    "ode": ("ordinary differential equation",),
    "bev": ("bird eye view",),
    "vla": ("vision language action",),
    "lif": ("leaky integrate and fire",),
    "stdp": ("spike timing dependent plasticity",),
    "ssvep": ("steady state visually evoked potential",),
    "ctr": ("click through rate",),
    "fl": ("federated learning",),
}
# Acronyms that are also everyday words ("clip", "clips", "clipping"): they stand for their
# expansion only when written in capitals, so gradient clipping is not a CLIP paper.
CASED_ACRONYMS: dict[str, tuple[str, ...]] = {
    "CLIP": ("contrastive language image pretraining",),
}

# English function words plus words that only frame an interest ("papers about …").
_STOP_TEXT = """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each either
    etc few for from further had has have having he her here hers herself him himself his how
    i if in into is it its itself just let many may me might more most much must my myself no
    nor not now of off on once only or other our ours ourselves out over own per same shall
    she should so some such than that the their theirs them themselves then there these they
    this those through thus to too toward towards under until up upon us very via was we were
    what when where whether which while who whom why will with within without would yet you
    your yours yourself
    anything especially interested interest interests like papers paper research really stuff
    things thing want work works kind related mostly particularly s t d ll re ve m vs versus
    eg ie"""
STOPWORDS = frozenset(_STOP_TEXT.split())

_WORD = re.compile(r"[^\W_]+")
# Splits "FlashAttention" but not "NeRF" or "LLaMA": lower→Upper only when a lower follows.
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z][a-z])")
# Bigrams never span these: "…pruning, quantization…" is a list, not a phrase.
_SEGMENT = re.compile(r"[.,;:!?()\[\]{}\"“”|/\n]")
_SPACE = re.compile(r"\s")
_STEMMER = snowballstemmer.stemmer("english")
CONCEPT = "="


def fold(word: str) -> str:
    """Case- and accent-insensitive form of one word: "Núñez" → "nunez"."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _parts(text: str) -> Iterator[tuple[int, int]]:
    """Character spans of the words of ``text``, camel-case words split into their parts."""
    for match in _WORD.finditer(text):
        start = match.start()
        for cut in _CAMEL.finditer(match.group()):
            yield start, match.start() + cut.start()
            start = match.start() + cut.start()
        yield start, match.end()


def surface_words(text: str) -> list[str]:
    """Words as written, camel-case words split ("FlashAttention" → "Flash", "Attention")."""
    return [text[start:end] for start, end in _parts(text)]


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The English Snowball stem of a folded word (cached: stemming is the hot spot)."""
    return str(_STEMMER.stemWord(word))


def _plain_stems(phrase: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in map(fold, surface_words(phrase)) if w not in STOPWORDS)


_EXPAND: dict[str, tuple[str, ...]] = {a: _plain_stems(e[0]) for a, e in ACRONYMS.items()}
_EXPAND_CASED = {a: _plain_stems(e[0]) for a, e in CASED_ACRONYMS.items()}
# First stem → (stems of an expansion, its concept term), longest first so nested ones all fire.
_PHRASES: dict[str, list[tuple[tuple[str, ...], str]]] = {}
for _acronym, _expansions in [*ACRONYMS.items(), *CASED_ACRONYMS.items()]:
    for _expansion in _expansions:
        _stems = _plain_stems(_expansion)
        _PHRASES.setdefault(_stems[0], []).append((_stems, CONCEPT + fold(_acronym)))
for _entries in _PHRASES.values():
    _entries.sort(key=lambda entry: -len(entry[0]))


@lru_cache(maxsize=200_000)
def word_stems(word: str) -> tuple[str, ...]:
    """Stems one written word stands for: () for a stopword, an acronym's expansion, or 1 stem."""
    cased = _EXPAND_CASED.get(word[:-1] if word.endswith("s") else word)  # "CLIPs"
    if cased is not None:
        return cased
    folded = fold(word)
    if folded in STOPWORDS:
        return ()
    expansion = _EXPAND.get(folded)
    if expansion is None and folded.endswith("s"):
        expansion = _EXPAND.get(folded[:-1])  # "LLMs", "SNNs"
    return expansion if expansion is not None else (stem(folded),)


@dataclass(frozen=True)
class Token:
    """One written word: the stems it stands for, where it is, and what separates it."""

    surface: str
    stems: tuple[str, ...]
    segment: int  # bigrams and concepts stay inside one segment
    start: int
    end: int
    breaks: bool  # a punctuation mark or a free-standing stopword ("and", "for") precedes it


def tokens(text: str) -> list[Token]:
    """Non-stopword words of ``text`` in order, with their stems, segments and spans."""
    out: list[Token] = []
    segment, previous_end, broken = 0, 0, True
    for start, end in _parts(text):
        gap = text[previous_end:start]
        previous_end = end
        if _SEGMENT.search(gap):
            segment += 1
            broken = True
        stems = word_stems(text[start:end])
        if not stems:
            # "sim-to-real" stays one run for display; "KV cache and decoding" becomes two.
            # "of" keeps "mixture of experts" one phrase.
            free = bool(_SPACE.search(gap)) and fold(text[start:end]) != "of"
            broken = broken or free or not out
            continue
        out.append(Token(text[start:end], stems, segment, start, end, broken))
        broken = False
    return out


@dataclass(frozen=True)
class Analysis:
    """The terms of a text: stemmed unigrams, adjacent-stem bigrams and concept terms."""

    unigrams: tuple[str, ...]
    bigrams: tuple[str, ...]
    concepts: tuple[str, ...]
    length: int  # unigram count, for length normalisation

    def terms(self) -> tuple[str, ...]:
        return self.unigrams + self.bigrams + self.concepts


@lru_cache(maxsize=20_000)  # a week of abstracts plus the popular interests
def analyze(text: str) -> Analysis:
    """Analyse a text (cached: topic keywords and popular interests repeat across subscribers).

    Bigrams join neighbours within a run (no punctuation or free-standing stopword between
    them); concepts are found within a segment, so "learning from human feedback" still
    yields =rlhf.
    """
    unigrams: list[str] = []
    bigrams: list[str] = []
    concepts: list[str] = []
    segment: list[str] = []
    current = -1
    previous = ""
    for token in tokens(text):
        if token.segment != current:
            concepts.extend(_concepts(segment))
            segment = []
            current = token.segment
        if token.breaks:
            previous = ""
        for stem_ in token.stems:
            if previous:
                bigrams.append(f"{previous} {stem_}")
            previous = stem_
        unigrams.extend(token.stems)
        segment.extend(token.stems)
    concepts.extend(_concepts(segment))
    return Analysis(tuple(unigrams), tuple(bigrams), tuple(concepts), len(unigrams))


def phrases(text: str) -> list[str]:
    """The runs of ``text`` between punctuation and free-standing stopwords, as written.

    "KV cache and speculative decoding for LLM serving" → "KV cache", "speculative decoding",
    "LLM serving": the facets of a free-text interest.
    """
    out: list[str] = []
    start = end = -1
    for token in tokens(text):
        if token.breaks and start >= 0:
            out.append(text[start:end])
            start = -1
        if start < 0:
            start = token.start
        end = token.end
    if start >= 0:
        out.append(text[start:end])
    return out


def _concepts(stems: list[str]) -> list[str]:
    found: list[str] = []
    for i, first in enumerate(stems):
        for phrase, concept in _PHRASES.get(first, ()):
            if tuple(stems[i : i + len(phrase)]) == phrase:
                found.append(concept)
    return found


@lru_cache(maxsize=100_000)
def normalize_name(name: str) -> str:
    """An author name for comparison: folded, punctuation dropped, whitespace collapsed."""
    return " ".join(fold(w) for w in surface_words(name))


# Concept term → the stems of each expansion that yields it ("=snn" → spike neural network, …).
_CONCEPT_STEMS: dict[str, tuple[tuple[str, ...], ...]] = {}
for _entries in _PHRASES.values():
    for _stems, _concept in _entries:
        _CONCEPT_STEMS[_concept] = (*_CONCEPT_STEMS.get(_concept, ()), _stems)
_JOINERS = "-‐‑'’"  # within a written word: "4-bit", "quantization-aware", "model's"


def spellings(text: str) -> frozenset[tuple[str, ...]]:
    """The stem sequences a whole occurrence of ``text`` may have: its own, and for an acronym
    or its expansion, each expansion's ("SNN" is met by "spiking networks" too)."""
    analysis = analyze(text)
    found = {analysis.unigrams} if analysis.unigrams else set()
    for concept in analysis.concepts:
        found.update(_CONCEPT_STEMS.get(concept, ()))
    return frozenset(found)


@lru_cache(maxsize=50_000)
def _cached_tokens(text: str) -> tuple[Token, ...]:
    return tuple(tokens(text))


def _joined(text: str, at: int, step: int) -> bool:
    """True if ``text[at]`` continues the written word next to it (a letter, a digit, or a
    hyphen or apostrophe with a letter or digit beyond it, ``step`` being the direction)."""
    if not 0 <= at < len(text):
        return False
    beyond = at + step
    return text[at].isalnum() or (
        text[at] in _JOINERS and 0 <= beyond < len(text) and text[beyond].isalnum()
    )


def whole_occurrence(text: str, wanted: frozenset[tuple[str, ...]]) -> str | None:
    """The first stretch of ``text`` whose stems are one of ``wanted``, as written, or None.

    The stretch is whole words (never a piece of "4-bit" or "FlashAttention"), lies within
    one run (no punctuation or free-standing stopword inside) and is not a bare number.
    """
    longest = max(map(len, wanted), default=0)
    found = _cached_tokens(text) if longest else ()
    for i, first in enumerate(found):
        if _joined(text, first.start - 1, -1):
            continue  # "bit" of "4-bit", "Attention" of "FlashAttention"
        stems: tuple[str, ...] = ()
        for j in range(i, len(found)):
            token = found[j]
            if j > i and (token.breaks or token.segment != first.segment):
                break
            stems += token.stems
            if len(stems) > longest:
                break
            if (
                stems in wanted
                and not _joined(text, token.end, 1)
                and not all(t.surface.isdigit() for t in found[i : j + 1])
            ):
                return text[first.start : token.end]
    return None
