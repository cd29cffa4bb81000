"""``paperboy smtp test``: each step of a real session against aiosmtpd, printed with its
reply, for plain, STARTTLS and implicit TLS servers, and the ways a setup fails."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from tests.conftest import write_config
from tests.smtp_server import SmtpServer, free_port

PAPERBOY = [sys.executable, "-c", "from pipeline.cli import app; app()"]
TO = "admin@example.org"


def smtp_test(folder: Path, smtp: str) -> subprocess.CompletedProcess[str]:
    path = write_config(folder, "sqlite:///var/paperboy.db", f"[smtp]\n{smtp}")
    return subprocess.run(
        [*PAPERBOY, "--config", str(path), "smtp", "test", TO],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def marks(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Each printed step's mark and name, e.g. "✓ EHLO"."""
    return [line.split(": ")[0] for line in result.stdout.splitlines() if line[:1] in "✓✗"]


def test_a_plain_server_gets_the_test_mail(tmp_path: Path) -> None:
    """Every step passes with the server's reply shown, and the server holds the one mail."""
    with SmtpServer() as server:
        result = smtp_test(tmp_path, f'host = "127.0.0.1"\nport = {server.port}\nsecurity = "none"')
        assert result.returncode == 0, result.stdout + result.stderr
        assert marks(result) == [
            f"✓ connect to 127.0.0.1:{server.port} (plain TCP)",
            "✓ EHLO",
            "✓ TLS",
            "✓ AUTH",
            f"✓ send to {TO}",
        ]
        assert f"✓ connect to 127.0.0.1:{server.port} (plain TCP): 220 " in result.stdout
        assert "✓ EHLO: 250 " in result.stdout
        assert f"ok: the server accepted a test mail for {TO}" in result.stdout
        [received] = server.messages
        assert received.message["To"] == TO
        assert received.message["Subject"] == "paperboy: SMTP test"


def test_a_closed_port_fails_at_connect(tmp_path: Path) -> None:
    """Nothing listening: ✗ at connect with the socket's error; exit 1 with the reason."""
    port = free_port()
    result = smtp_test(tmp_path, f'host = "127.0.0.1"\nport = {port}\nsecurity = "none"')
    assert result.returncode == 1
    assert marks(result) == [f"✗ connect to 127.0.0.1:{port}"]
    assert result.stderr.startswith(
        f"paperboy: error: SMTP test failed at connect to 127.0.0.1:{port}"
    )
    assert "Connect call failed" in result.stderr or "refused" in result.stderr.lower()


def test_starttls_and_auth_with_the_right_password(
    tmp_path: Path, server_tls: ssl.SSLContext, ca_file: Path
) -> None:
    """STARTTLS against the operator's CA, then AUTH, then the mail: all ✓."""
    with SmtpServer(starttls=server_tls, auth=("paperboy", "s3cret")) as server:
        result = smtp_test(
            tmp_path,
            f'host = "127.0.0.1"\nport = {server.port}\nsecurity = "starttls"\n'
            f'ca_file = "{ca_file}"\nusername = "paperboy"\npassword = "s3cret"',
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "✓ STARTTLS: 220 " in result.stdout and "TLSv1." in result.stdout
        assert "✓ AUTH as paperboy: 235 " in result.stdout
        assert len(server.messages) == 1


def test_a_rejected_password_fails_at_auth_with_the_reply(
    tmp_path: Path, server_tls: ssl.SSLContext, ca_file: Path
) -> None:
    """A wrong password: ✓ up to STARTTLS, ✗ AUTH with the server's 535; nothing sent."""
    with SmtpServer(starttls=server_tls, auth=("paperboy", "s3cret")) as server:
        result = smtp_test(
            tmp_path,
            f'host = "127.0.0.1"\nport = {server.port}\nsecurity = "starttls"\n'
            f'ca_file = "{ca_file}"\nusername = "paperboy"\npassword = "wrong"',
        )
        assert result.returncode == 1
        assert marks(result)[-2:] == ["✓ STARTTLS", "✗ AUTH"]
        assert "✗ AUTH: 535 " in result.stdout
        assert "paperboy: error: SMTP test failed at AUTH: 535 " in result.stderr
        assert server.messages == []


def test_starttls_not_offered_is_refused(tmp_path: Path) -> None:
    """security = "starttls" on a server without it: ✗ STARTTLS, never plain text."""
    with SmtpServer() as server:
        result = smtp_test(tmp_path, f'host = "127.0.0.1"\nport = {server.port}')
        assert result.returncode == 1
        assert "✗ STARTTLS: the server does not offer STARTTLS" in result.stdout
        assert server.messages == []


def test_implicit_tls_and_an_untrusted_certificate(
    tmp_path: Path, server_tls: ssl.SSLContext, ca_file: Path
) -> None:
    """Port-465 style TLS works with the CA; without it the certificate is refused at
    connect, saying so."""
    with SmtpServer(implicit_tls=server_tls) as server:
        smtp = f'host = "127.0.0.1"\nport = {server.port}\nsecurity = "tls"\n'
        good = smtp_test(tmp_path / "good", smtp + f'ca_file = "{ca_file}"')
        assert good.returncode == 0, good.stdout + good.stderr
        assert f"✓ connect to 127.0.0.1:{server.port} (implicit TLS): 220 " in good.stdout
        bad = smtp_test(tmp_path / "bad", smtp)
        assert bad.returncode == 1
        assert marks(bad) == [f"✗ connect to 127.0.0.1:{server.port}"]
        assert "CERTIFICATE_VERIFY_FAILED" in bad.stdout
        assert len(server.messages) == 1
