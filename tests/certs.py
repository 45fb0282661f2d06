"""Throwaway TLS certificates (openssl, 2 days) and a Mosquitto with TLS and passwords."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.servers import MosquittoServer


def make_certs(d: Path) -> None:
    """A test CA and a server certificate for 127.0.0.1 in `d` (ca.crt, server.crt/.key)."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )


def start_tls_broker(tmp: Path, users: dict[str, str]) -> tuple[MosquittoServer, Path]:
    """A started Mosquitto on a TLS listener, anonymous off, with these users and passwords.

    Returns the broker (stop it) and the directory with `ca.crt`.
    """
    certs = tmp / "certs"
    certs.mkdir()
    make_certs(certs)
    passwd = tmp / "passwd"
    for i, (user, password) in enumerate(users.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", "-b", *create, str(passwd), user, password], check=True)
    (tmp / "broker").mkdir()
    broker = MosquittoServer(tmp / "broker")
    broker.config_path.write_text(
        "\n".join(
            [
                f"listener {broker.port} 127.0.0.1",
                f"cafile {certs / 'ca.crt'}",
                f"certfile {certs / 'server.crt'}",
                f"keyfile {certs / 'server.key'}",
                "allow_anonymous false",
                f"password_file {passwd}",
                "user root",
                f"log_dest file {broker.mosquitto_log}",
                "",
            ]
        )
    )
    broker.start()
    return broker, certs
