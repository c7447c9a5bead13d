"""A throwaway self-signed certificate for serving the simulator over HTTPS in tests."""

from __future__ import annotations

import os
import shutil
import subprocess


def make_self_signed_cert(directory: str, host: str = "127.0.0.1") -> tuple[str, str]:
    """Write ``cert.pem`` and ``key.pem`` into ``directory`` (SAN: the host, localhost).

    Uses the ``openssl`` command line tool. Returns (cert path, key path); the certificate is
    its own CA, so it is also what a client passes as ``ca_cert``.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make a test certificate")
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "2",
            "-subj",
            f"/CN={host}",
            "-addext",
            f"subjectAltName=IP:{host},DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
