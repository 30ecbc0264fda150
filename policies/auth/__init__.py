"""Authentication and scope decisions, free of any web framework; the registry and gateway wire them."""

from policies.auth.attempts import AttemptLimits, FailedAttempts
from policies.auth.challenge import challenge
from policies.auth.introspection import IntrospectionVerifier
from policies.auth.issuer import (
    ClientConfig,
    ClientCredentialsIssuer,
    TokenResponse,
    hash_secret,
    load_clients,
)
from policies.auth.keys import (
    JwksSource,
    KeyRing,
    RemoteJwks,
    StaticJwks,
    generate_signing_key,
    import_signing_key,
    load_or_create_signing_key,
)
from policies.auth.oidc import OidcProvider, PendingSignIn, ProviderUnavailable, SignedIn, SignInFailed
from policies.auth.principal import InsufficientScope, InvalidToken, Principal, require_scopes
from policies.auth.verifier import TokenVerifier

__all__ = [
    "AttemptLimits",
    "ClientConfig",
    "ClientCredentialsIssuer",
    "FailedAttempts",
    "InsufficientScope",
    "IntrospectionVerifier",
    "InvalidToken",
    "JwksSource",
    "KeyRing",
    "OidcProvider",
    "PendingSignIn",
    "Principal",
    "ProviderUnavailable",
    "RemoteJwks",
    "SignInFailed",
    "SignedIn",
    "StaticJwks",
    "TokenResponse",
    "TokenVerifier",
    "challenge",
    "generate_signing_key",
    "hash_secret",
    "import_signing_key",
    "load_clients",
    "load_or_create_signing_key",
    "require_scopes",
]
