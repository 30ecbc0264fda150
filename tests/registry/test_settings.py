"""Settings read from the environment: what each variable accepts, and the one-line refusals."""

from __future__ import annotations

import pytest

from registry.settings import Settings


def test_retention_and_webhook_timing_come_from_the_environment():
    settings = Settings.from_env(
        {
            "CHARTER_OUTBOX_RETENTION_DAYS": "3",
            "CHARTER_WEBHOOK_LOG_RETENTION_DAYS": "90",
            "CHARTER_WEBHOOK_FIRST_RETRY_SECONDS": "2.5",
        }
    )
    assert (settings.outbox_retention_days, settings.webhook_log_retention_days) == (3, 90)
    assert settings.webhook_first_retry_seconds == 2.5
    defaults = Settings.from_env({})
    assert (defaults.outbox_retention_days, defaults.webhook_log_retention_days) == (7, 30)
    assert defaults.webhook_first_retry_seconds == 1.0


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CHARTER_WEBHOOK_FIRST_RETRY_SECONDS", "soon", "must be a number of seconds, not 'soon'"),
        ("CHARTER_WEBHOOK_FIRST_RETRY_SECONDS", "nan", "must be between 0.1 and 3600, not nan"),
        ("CHARTER_WEBHOOK_FIRST_RETRY_SECONDS", "0", "must be between 0.1 and 3600, not 0"),
        ("CHARTER_OUTBOX_RETENTION_DAYS", "0", "must be between 1 and 3650, not 0"),
    ],
)
def test_bad_values_are_refused_by_name(variable, value, message):
    with pytest.raises(ValueError, match=f"{variable} {message}"):
        Settings.from_env({variable: value})
