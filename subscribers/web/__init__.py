"""The subscriber web app (FastAPI): one router per area, composed by ``create_app``."""

from subscribers.web.app import create_app

__all__ = ["create_app"]
