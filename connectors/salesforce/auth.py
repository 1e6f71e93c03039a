"""Getting a Salesforce session: password, OAuth 2.0 JWT bearer, or a given session id.

simple-salesforce does the logging in (SOAP login for username + password + security
token, the JWT bearer token flow for a connected app). The result is a ``Session``: an
access token and the instance URL every REST call goes to. Secrets stay in
``SecretStr`` until the moment they are sent and never appear in a message.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import requests
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from simple_salesforce.login import SalesforceLogin

from agent.core.errors import ConfigError
from agent.core.redaction import register_secret_text
from connectors.salesforce.errors import SalesforceFatalError, from_transport
from connectors.salesforce.settings import SalesforceSettings

__all__ = ["AuthMode", "Login", "Session", "auth_mode"]

AuthMode = Literal["password", "jwt", "session"]


@dataclass(frozen=True, slots=True)
class Session:
    """An access token and the instance it is valid for. ``repr`` hides the token."""

    token: str
    instance_url: str

    def __post_init__(self) -> None:
        register_secret_text(self.token)  # a token obtained at login is as secret as a password

    def __repr__(self) -> str:
        return f"Session(instance_url={self.instance_url!r})"


def auth_mode(settings: SalesforceSettings) -> AuthMode:
    """The configured auth mode, or the one the given settings make complete."""
    if settings.auth is not None:
        return settings.auth
    if settings.session_id is not None:
        return "session"
    if settings.private_key_file is not None:
        return "jwt"
    if settings.password is not None:
        return "password"
    raise ConfigError(
        "salesforce: no credentials; set AX_SALESFORCE__USERNAME with AX_SALESFORCE__PASSWORD and "
        "AX_SALESFORCE__SECURITY_TOKEN (password), or AX_SALESFORCE__CONSUMER_KEY and "
        "AX_SALESFORCE__PRIVATE_KEY_FILE (jwt), or AX_SALESFORCE__SESSION_ID and "
        "AX_SALESFORCE__INSTANCE_URL (session)"
    )


_HINTS = {
    "user hasn't approved this consumer": (
        " (pre-authorise the integration user for the connected app: set 'Admin approved"
        " users are pre-authorized' and add the user's profile or a permission set)"
    ),
}

_REQUIRED: dict[AuthMode, tuple[str, ...]] = {
    "password": ("username", "password", "security_token"),
    "jwt": ("username", "consumer_key", "private_key_file"),
    "session": ("session_id", "instance_url"),
}


def _check_complete(settings: SalesforceSettings, mode: AuthMode) -> None:
    missing = [k for k in _REQUIRED[mode] if getattr(settings, k) is None]
    if missing:
        keys = ", ".join(f"salesforce.{k}" for k in missing)
        raise ConfigError(f"salesforce auth {mode!r} needs {keys}")
    key_file = settings.private_key_file
    if mode == "jwt" and key_file is not None and not key_file.is_file():
        raise ConfigError(f"salesforce.private_key_file {key_file} does not exist")


class Login:
    """Obtains sessions; ``can_refresh`` tells whether an expired one can be replaced."""

    def __init__(self, settings: SalesforceSettings, http: requests.Session) -> None:
        self.mode: AuthMode = auth_mode(settings)
        _check_complete(settings, self.mode)
        self._settings = settings
        self._http = http

    @property
    def can_refresh(self) -> bool:
        return self.mode != "session"

    def login(self) -> Session:
        """A fresh session (or the configured one in ``session`` mode)."""
        s = self._settings
        if self.mode == "session":
            assert s.session_id is not None  # checked in __init__
            assert s.instance_url is not None
            return Session(s.session_id.get_secret_value(), s.instance_url.rstrip("/"))
        try:
            with warnings.catch_warnings():
                # The SDK also warns (to stderr) about unapproved connected apps; the
                # error below says the same with the fix.
                warnings.simplefilter("ignore")
                token, instance = self._sdk_login()
        except SalesforceAuthenticationFailed as exc:
            hint = _HINTS.get(str(exc.auth_message), "")
            raise SalesforceFatalError(
                f"login ({self.mode}) failed: {exc.code}: {exc.auth_message}{hint}",
                status=401,
                code="LOGIN",
            ) from None
        except requests.RequestException as exc:
            login_url = f"https://{s.domain}.salesforce.com"
            raise from_transport(exc, f"{self.mode} login", login_url) from None
        return Session(token, _instance_url(instance, s.instance_url))

    def _sdk_login(self) -> tuple[str, str]:
        s = self._settings
        if self.mode == "password":
            assert s.password is not None  # checked in __init__
            assert s.security_token is not None
            return SalesforceLogin(
                username=s.username,
                password=s.password.get_secret_value(),
                security_token=s.security_token.get_secret_value(),
                sf_version=s.api_version,
                domain=s.domain,
                session=self._http,
            )
        return SalesforceLogin(
            username=s.username,
            consumer_key=s.consumer_key,
            privatekey_file=str(s.private_key_file),
            domain=s.domain,
            session=self._http,
        )


def _instance_url(host: str, configured: str | None) -> str:
    """The instance Salesforce named at login; a configured URL wins (proxies, tests)."""
    if configured:
        return configured.rstrip("/")
    return f"https://{host}".rstrip("/")
