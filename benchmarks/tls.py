"""The suite's TLS material: a throwaway CA and a server certificate made by trustme.

The parent makes them once per run (:func:`make_certificates`) in a temporary
directory; the server loads ``server.pem`` and ``server.key`` from it, each
worker trusts ``ca.pem`` through :func:`client_context`. Nothing here touches the
system's trust store, and every client verifies the certificate as it would in
production (hostname 127.0.0.1, an IP address in the certificate's names).
"""

from __future__ import annotations

import ssl
from pathlib import Path

CA_FILE = "ca.pem"
CHAIN_FILE = "server.pem"
KEY_FILE = "server.key"


def make_certificates(directory: Path) -> Path:
    """Write ca.pem, server.pem (chain) and server.key into ``directory``; return it."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    directory.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(directory / CA_FILE))
    cert.private_key_pem.write_to_path(str(directory / KEY_FILE))
    with open(directory / CHAIN_FILE, "wb") as chain:
        for blob in cert.cert_chain_pems:
            chain.write(blob.bytes())
    return directory


def server_context(directory: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(directory / CHAIN_FILE), str(directory / KEY_FILE))
    return context


def client_context(ca_file: str) -> ssl.SSLContext:
    """A verifying client context that trusts only the run's CA."""
    return ssl.create_default_context(cafile=ca_file)
