"""Settings of the portal's sign-in through an OpenID Connect provider."""

from __future__ import annotations

import pytest

from registry.settings import Settings


def test_an_issuer_without_the_clients_credentials_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="CHARTER_OIDC_CLIENT_ID and CHARTER_OIDC_CLIENT_SECRET"):
        Settings.from_env({"CHARTER_OIDC_ISSUER": "https://id.example", "CHARTER_OIDC_CLIENT_ID": "portal"})
    settings = Settings.from_env(
        {
            "CHARTER_OIDC_ISSUER": "https://id.example/",
            "CHARTER_OIDC_CLIENT_ID": "portal",
            "CHARTER_OIDC_CLIENT_SECRET": "s",
        }
    )
    assert settings.oidc_configured() and settings.oidc_issuer == "https://id.example/"
    assert not Settings.from_env({}).oidc_configured()
