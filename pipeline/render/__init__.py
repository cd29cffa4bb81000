"""The render stage: selections and notices → emails' subject, HTML and text (pure).

    views.py     view models: every value a template prints, precomputed and cleaned
    compiler.py  the compile-once step (the ``when``/``each`` dialect, templates/README.md)
    renderer.py  ``Renderer``: digests, the edition's web view, confirm/welcome/goodbye

Turning a ``RenderedEmail`` into message bytes is ``pipeline.mime``'s job, not this package's.
"""

from pipeline.cleantext import cut_words, header_text, one_line, safe_url
from pipeline.models import RenderedEmail
from pipeline.render.renderer import NoticeKind, Renderer
from pipeline.render.views import DigestLinks, FeedbackLinks

__all__ = [
    "DigestLinks",
    "FeedbackLinks",
    "NoticeKind",
    "RenderedEmail",
    "Renderer",
    "cut_words",
    "header_text",
    "one_line",
    "safe_url",
]
