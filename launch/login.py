"""The tracking server's login, as the launch checks it: the credentials come from the
environment (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, or a token in
``MLFLOW_TRACKING_TOKEN``), the variables the MLflow client itself reads. Messages name the
variables, never their values; a URI is shown with its password masked.

A server with authentication (MLflow's basic-auth app) answers ``/health`` to anyone, so
whether it takes these credentials is asked with a call that needs a login.
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.parse
import urllib.request

USER_ENV, PASSWORD_ENV, TOKEN_ENV = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
)
# A call that needs a login on a server with authentication (any user may make it).
_LOGIN_PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"


def _login_headers() -> dict[str, str]:
    """The Authorization header the MLflow client sends, from the same environment variables
    (user and password first, else a token); never printed."""
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    if os.environ.get(TOKEN_ENV):
        return {"Authorization": f"Bearer {os.environ[TOKEN_ENV]}"}
    return {}


def login_refused(uri: str, timeout: float = 5.0) -> str | None:
    """None if the server at ``uri`` takes this process's credentials (or needs none), else
    what to set: a server with authentication refuses a call without a valid login (401) or
    by a user without permission (403). The message names the variables, never their
    values."""
    request = urllib.request.Request(uri.rstrip("/") + _LOGIN_PROBE, headers=_login_headers())
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        code = exc.code
    except OSError as exc:
        return f"a call that needs a login failed: {exc}"
    if code == 403:
        return (
            f"the user in {USER_ENV} has no permission there (HTTP 403); log in as a user who "
            "may write (the server's admin, or one granted EDIT)"
        )
    if code != 401:
        return f"a call that needs a login failed: HTTP {code}"
    sent = _login_headers().get("Authorization", "")
    if not sent:
        return (
            f"it asks for a login (HTTP 401) and {USER_ENV} / {PASSWORD_ENV} are not set; set "
            "both to a user of that server in the environment (never in the URI)"
        )
    what = f"{USER_ENV} / {PASSWORD_ENV}" if sent.startswith("Basic") else TOKEN_ENV
    return f"it refused the login in {what} (HTTP 401); set a user and password of that server"


def redacted(uri: str) -> str:
    """``uri`` with any password in it replaced by ``***`` (for messages)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
