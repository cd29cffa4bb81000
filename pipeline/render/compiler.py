"""The compile-once template step: MJML rendered with slots, compiled once, filled per email.

MRML costs about half a millisecond per document, so a template is compiled once, not per
email. The MJML template is rendered once with *slots* for every per-email value, compiled,
and the compiled HTML becomes a small Jinja template that fills the slots (escaped) per email:

    digest.mjml.j2 ──Jinja, slots──▶ MJML ──mjml2html (once)──▶ HTML with slots ──▶ Jinja
                                                              per email: fill ──▶ HTML

Conditions and loops over per-email values are written with the ``when``/``each`` call blocks
(the dialect is documented in ``templates/README.md``), which leave markers in the compiled
HTML that become ``{% if %}``/``{% for %}``. ``tests/test_render.py`` proves the result is
byte-identical to rendering and compiling each email.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jinja2
import mjml
from markupsafe import Markup

from pipeline.errors import RenderError

_MARK = re.compile(r"@@pb:(v|for|if|ifnot|end)(?::([A-Za-z_][\w.]*))?(?::([A-Za-z_][\w.]*))?@@")


class _Slot:
    """Stands for a per-email value while a template is compiled: prints as a marker."""

    __slots__ = ("_pb_path",)

    def __init__(self, path: str) -> None:
        self._pb_path = path

    def __getattr__(self, name: str) -> _Slot:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Slot(f"{self._pb_path}.{name}")

    def __html__(self) -> str:
        return f"@@pb:v:{self._pb_path}@@"

    __str__ = __html__

    def __bool__(self) -> bool:
        raise RenderError(f"template tests {self._pb_path} with `if`; use a `when` call block")

    def __iter__(self) -> Any:
        raise RenderError(f"template loops over {self._pb_path} with `for`; use `each`")


Caller = Callable[..., Markup]


def _reference_helpers() -> dict[str, Callable[..., Markup]]:
    """``when``/``each`` evaluated directly: what rendering each email from scratch does."""

    def each(items: Iterable[Any], caller: Caller) -> Markup:
        return Markup("").join(caller(item) for item in items)

    def when(value: Any, caller: Caller) -> Markup:
        return caller() if value else Markup("")

    def unless(value: Any, caller: Caller) -> Markup:
        return Markup("") if value else caller()

    return {"each": each, "when": when, "unless": unless, **_mj_aliases(each, when, unless)}


def _skeleton_helpers() -> dict[str, Callable[..., Markup]]:
    """``when``/``each`` that leave markers for the compiled template to turn into if/for."""
    count = iter(range(1, 1_000_000))

    def each(items: _Slot, caller: Caller) -> Markup:
        var = f"item{next(count)}"
        body = caller(_Slot(var))
        return Markup("@@pb:for:{}:{}@@{}@@pb:end@@").format(var, items._pb_path, body)

    def when(value: _Slot, caller: Caller) -> Markup:
        return Markup("@@pb:if:{}@@{}@@pb:end@@").format(value._pb_path, caller())

    def unless(value: _Slot, caller: Caller) -> Markup:
        return Markup("@@pb:ifnot:{}@@{}@@pb:end@@").format(value._pb_path, caller())

    def raw(helper: Callable[..., Markup]) -> Callable[..., Markup]:
        # Between MJML elements a marker must sit in <mj-raw>, which compiles to its content.
        def wrapped(value: Any, caller: Caller) -> Markup:
            head, body, end = _split_outer(helper(value, caller))
            return Markup("<mj-raw>{}</mj-raw>{}<mj-raw>{}</mj-raw>").format(head, body, end)

        return wrapped

    return {
        "each": each,
        "when": when,
        "unless": unless,
        "mj_each": raw(each),
        "mj_when": raw(when),
        "mj_unless": raw(unless),
    }


def _split_outer(out: Markup) -> tuple[Markup, Markup, Markup]:
    """(opening marker, body, closing marker) of a skeleton helper's output."""
    head_end = out.index("@@", 2) + 2
    tail = len("@@pb:end@@")
    return out[:head_end], out[head_end:-tail], out[-tail:]


def _mj_aliases(*helpers: Callable[..., Markup]) -> dict[str, Callable[..., Markup]]:
    each, when, unless = helpers
    return {"mj_each": each, "mj_when": when, "mj_unless": unless}


_FILL_ENV = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
)


def _fill_template(html: str) -> jinja2.Template:
    """The compiled HTML as a Jinja template: literal text, with markers as if/for/values."""
    parts: list[str] = []
    open_blocks: list[str] = []
    pos = 0
    for match in _MARK.finditer(html):
        literal = html[pos : match.start()]
        if literal:
            if "{% endraw" in literal or "{%- endraw" in literal:
                raise RenderError("compiled template contains '{% endraw'; cannot build it")
            parts.append("{% raw %}" + literal + "{% endraw %}")
        kind, first, second = match.groups()
        if kind == "v":
            parts.append("{{ " + first + " }}")
        elif kind == "for":
            parts.append(f"{{% for {first} in {second} %}}")
            open_blocks.append("endfor")
        elif kind in ("if", "ifnot"):
            parts.append(f"{{% if {'not ' if kind == 'ifnot' else ''}{first} %}}")
            open_blocks.append("endif")
        else:
            parts.append("{% " + open_blocks.pop() + " %}")
        pos = match.end()
    if open_blocks:
        raise RenderError("unbalanced when/each markers in a compiled template")
    parts.append("{% raw %}" + html[pos:] + "{% endraw %}")
    return _FILL_ENV.from_string("".join(parts))


def compile_mjml(source: str) -> str:
    try:
        html: str = mjml.mjml2html(source, fonts={})
    except Exception as e:  # MRML raises plain exceptions with the parser's message
        raise RenderError(f"MJML did not compile: {e}") from e
    return _title_as_label(html)


_TITLE = re.compile(r"<title>(.*?)</title>", re.S)
_BODY_LABEL = re.compile(r'(<div aria-label=")((?:[^"\\]|\\.)*)(" aria-roledescription="email")')


def _title_as_label(html: str) -> str:
    """MRML copies <mj-title> verbatim into <title> but through Rust's debug escaping into the
    body's aria-label (``\\`` doubled, combining marks and joiners as ``\\u{…}``), which
    mangles Devanagari, emoji sequences and backslashes; label the body with the title as
    written instead. The title is escaped text, so it is safe in the attribute too."""
    title = _TITLE.search(html)
    if title is None:
        return html
    label = title.group(1).replace('"', "&#34;")
    return _BODY_LABEL.sub(lambda m: m.group(1) + label + m.group(3), html, count=1)


def source_environment(folder: Path) -> jinja2.Environment:
    """Templates from ``folder``; autoescape on for everything but the ``.txt.j2`` parts."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        # The .txt.j2 parts are text/plain: escaping would show "&amp;" to the reader.
        autoescape=lambda name: name is None or not name.endswith(".txt.j2"),  # noqa: S701
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


_COMPILED: dict[tuple[str, str], jinja2.Template] = {}


def compiled_html(env: jinja2.Environment, name: str, version: str) -> jinja2.Template:
    """The fill-in template for ``name``, compiled once per template version (process-wide)."""
    key = (name, version)
    if key not in _COMPILED:
        try:
            skeleton = env.get_template(name).render(v=_Slot("v"), **_skeleton_helpers())
        except jinja2.TemplateError as e:
            raise RenderError(f"template {name}: {e}") from e
        _COMPILED[key] = _fill_template(compile_mjml(skeleton))
    return _COMPILED[key]


def reference_html(env: jinja2.Environment, name: str, view: object) -> str:
    """The slow path: render the MJML template for this one email and compile it."""
    try:
        source = env.get_template(name).render(v=view, **_reference_helpers())
    except jinja2.TemplateError as e:
        raise RenderError(f"template {name}: {e}") from e
    return compile_mjml(source)


def templates_version(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.j2")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
