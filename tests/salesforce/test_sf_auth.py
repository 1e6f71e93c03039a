"""Logging in: JWT bearer on a sandbox, password on a My Domain; secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import capture_logs

from agent.config.settings import SalesforceSettings
from connectors.salesforce import from_settings
from connectors.salesforce.auth import Session, auth_mode
from connectors.salesforce.errors import SalesforceFatalError
from tests.salesforce.fake import FakeSalesforce


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "server.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_jwt_bearer_login_on_a_sandbox(
    fake: FakeSalesforce, mock: responses.RequestsMock, key_file: Path
) -> None:
    fake.credentials["int@acme.example.sandbox"] = "unused"
    fake.org.insert("Account", {"Name": "A"})
    sf = SalesforceSettings(
        username="int@acme.example.sandbox",
        consumer_key=fake.consumer_key,
        private_key_file=key_file,
        domain="test",
    )
    assert auth_mode(sf) == "jwt"
    connector = from_settings(sf)
    names = [a.name for b in connector.read_accounts(None) for a in b.records]
    assert names == ["A"]
    token_call = next(c for c in mock.calls if c.request.url.endswith("/services/oauth2/token"))
    assert token_call.request.url == "https://test.salesforce.com/services/oauth2/token"
    assert (
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        in token_call.request.body
    )
    # REST calls went to the instance the token endpoint named.
    assert any(c.request.url.startswith(fake.instance_url + "/services/data/") for c in mock.calls)


def test_jwt_refused_by_salesforce_reports_its_reason(
    fake: FakeSalesforce, mock: responses.RequestsMock, key_file: Path
) -> None:
    sf = SalesforceSettings(
        username="nobody@acme.example", consumer_key="wrong", private_key_file=key_file
    )
    connector = from_settings(sf)
    with pytest.raises(SalesforceFatalError, match="invalid_grant") as err:
        list(connector.read_accounts(None))
    assert "pre-authorise the integration user" in str(err.value)


def test_missing_private_key_file_is_a_config_error(tmp_path: Path) -> None:
    from agent.config.settings import ConfigError

    sf = SalesforceSettings(username="u", consumer_key="k", private_key_file=tmp_path / "nope.key")
    with pytest.raises(ConfigError, match=r"nope\.key"):
        from_settings(sf)


def test_password_login_on_a_my_domain_and_secrets_never_logged(
    fake: FakeSalesforce, mock: responses.RequestsMock
) -> None:
    fake.credentials["int@acme.example"] = "pw-Secret-1" + "tok-Secret-2"
    fake.org.insert("Account", {"Name": "A"})
    sf = SalesforceSettings(
        username="int@acme.example",
        password="pw-Secret-1",
        security_token="tok-Secret-2",
        domain="acme.my",
    )
    connector = from_settings(sf)
    with capture_logs() as logs:
        list(connector.read_accounts(None))
        fake.expire_sessions()
        list(connector.read_accounts(None))
        fake.credentials.clear()
        fake.expire_sessions()
        with pytest.raises(Exception, match="INVALID_LOGIN") as err:
            list(connector.read_accounts(None))
    login = next(c for c in mock.calls if "/services/Soap/u/" in c.request.url)
    assert login.request.url == "https://acme.my.salesforce.com/services/Soap/u/62.0"
    tokens = [*fake.tokens, "00D000000000001!fake-1", "00D000000000001!fake-2"]
    text = (
        repr(logs)
        + str(err.value)
        + repr(connector.client.session if connector.client._session else "")
    )
    for secret in ["pw-Secret-1", "tok-Secret-2", *tokens]:
        assert secret not in text
    assert "pw-Secret-1" not in repr(sf)


def test_session_repr_hides_the_token() -> None:
    session = Session("00Dxx!secret-token", "https://acme.my.salesforce.com")
    assert "secret-token" not in repr(session)
    assert "acme.my.salesforce.com" in repr(session)
