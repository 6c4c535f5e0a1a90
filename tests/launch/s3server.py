"""Names shared by the S3 fixtures (conftest) and the tests that use them."""

from __future__ import annotations

import socket

BUCKET = "capstudy"  # the one bucket of the moto server (fixture ``s3_endpoint``)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
