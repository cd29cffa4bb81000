"""``paperboy smtp test``: try the SMTP settings step by step with one real mail."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from pipeline.commands.common import fail, load

smtp_app = typer.Typer(help="Check the SMTP settings.", no_args_is_help=True)


@smtp_app.command("test")
def test(
    address: Annotated[str, typer.Argument(help="Where to send the test mail.")],
) -> None:
    """Connect, secure (TLS or STARTTLS), authenticate and send one test mail to ADDRESS.

    Each step is printed with ✓ or ✗ and the server's reply; the first that fails ends the
    test with exit 1. Uses the [smtp] settings whatever delivery.backend says.

    Example: paperboy smtp test me@example.org
    """
    from pipeline.errors import AddressError
    from pipeline.smtp_probe import Step, probe
    from subscribers.forms import normalize_email

    config = load()
    try:
        to = normalize_email(address)
    except AddressError as e:
        fail(f"{address!r}: {e}")

    def report(step: Step) -> None:
        typer.echo(f"{'✓' if step.ok else '✗'} {step.name}: {step.detail}")

    failed = asyncio.run(probe(config.smtp, config.email, to, report))
    if failed is not None:
        fail(f"SMTP test failed at {failed.name}: {failed.detail}", code=1)
    typer.echo(f"ok: the server accepted a test mail for {to}")
