"""The egress policy alone: which addresses and URLs the server may send requests to."""

from __future__ import annotations

import ipaddress

import pytest

from policies.egress import EgressPolicy, EgressRefused, forbidden_reason

FORBIDDEN = [
    ("169.254.169.254", "link-local"),  # AWS, GCP, Azure metadata
    ("fd00:ec2::254", "private"),  # AWS metadata over IPv6
    ("100.100.100.200", "not a public"),  # Alibaba metadata, in the shared 100.64.0.0/10
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"),
    ("127.3.4.5", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("255.255.255.255", "private"),
    ("::ffff:127.0.0.1", "IPv6 form of 127.0.0.1"),
    ("::ffff:169.254.169.254", "IPv6 form of 169.254.169.254"),
    ("::127.0.0.1", "IPv6 form of 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "IPv6 form of 169.254.169.254"),
    ("2002:7f00:1::", "IPv6 form of 127.0.0.1"),
]


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN)
def test_non_public_addresses_are_refused_with_a_reason(address, reason):
    ip = ipaddress.ip_address(address)
    assert reason in (forbidden_reason(ip) or "")
    with pytest.raises(EgressRefused, match="CHARTER_EGRESS_ALLOW"):
        EgressPolicy().check_address(ip, 80)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    EgressPolicy().check_address(ipaddress.ip_address(address), 443)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com:6379/_INFO", "only http and https"),
        ("http://user:password@example.com/", "credentials"),
        ("https://token@example.com/", "credentials"),
        ("http:///path-only", "no host"),
        ("http://[fe80::1%25eth0]/", "percent signs"),
        ("http://exa mple.com/", "percent signs"),
        ("http://[::1/", "valid URL"),
        # The resolver's IDNA codec raised UnicodeError on these: a 500 instead of a refusal.
        ("https://" + "0" * 64 + ".example.com/", "longer than DNS allows"),
        ("https://" + "a." * 127 + "com/", "longer than DNS allows"),
    ],
)
def test_url_forms_that_are_refused(url, reason):
    with pytest.raises(EgressRefused, match=reason):
        EgressPolicy().check_url(url)


def test_the_allow_list_admits_networks_and_single_endpoints():
    policy = EgressPolicy.from_allow_list(
        " 10.20.0.0/16, ::1 ,127.0.0.1, billing.internal:8443, [fd00::5]:9000"
    )
    policy.check_address(ipaddress.ip_address("10.20.3.4"), 80)
    policy.check_address(ipaddress.ip_address("::1"), 22)
    policy.check_address(ipaddress.ip_address("127.0.0.1"), 6379)
    policy.check_address(ipaddress.ip_address("fd00::5"), 9000)
    with pytest.raises(EgressRefused):
        policy.check_address(ipaddress.ip_address("fd00::5"), 9001)  # that host, another port
    with pytest.raises(EgressRefused):
        policy.check_address(ipaddress.ip_address("10.21.0.1"), 80)
    with pytest.raises(EgressRefused):
        policy.check_address(ipaddress.ip_address("127.0.0.2"), 80)
    assert policy.admits_endpoint("Billing.Internal.", 8443)
    assert not policy.admits_endpoint("billing.internal", 443)


@pytest.mark.parametrize("entry", ["localhost", "10.0.0.0/33", "host:99999", "http://10.0.0.1", "*"])
def test_a_malformed_allow_list_entry_is_an_error_naming_it(entry):
    with pytest.raises(ValueError, match="CHARTER_EGRESS_ALLOW"):
        EgressPolicy.from_allow_list(f"10.0.0.0/8,{entry}")
