"""Sign-up address checks (CM-12.10): disposable domains and malformed addresses refused."""

from __future__ import annotations

import pytest
from disposable_email_domains import blocklist

from gatewayz.accounts.disposable import is_disposable, validate_signup_email
from gatewayz.errors import InvalidRequest


def test_cm_12_10_temp_email_detection_blocks_registration() -> None:
    assert "mailinator.com" in blocklist  # the maintained list is the source, not our own
    for address in (
        "someone@mailinator.com",
        "someone@MAILINATOR.COM",
        "x@inbox.mailinator.com",  # a subdomain of a listed domain counts
        "x@a.b.mailinator.com.",
        "y@guerrillamail.com",
    ):
        with pytest.raises(InvalidRequest) as info:
            validate_signup_email(address)
        assert info.value.status == 400
        assert info.value.code == "disposable_email"
        assert "Disposable" in info.value.message


def test_cm_12_10_permanent_domains_pass() -> None:
    for domain in (
        "gmail.com",
        "example.org",
        "mail.company.co.uk",
        "xmailinator.com",
    ):  # suffix, not subdomain
        assert not is_disposable(domain)
    assert validate_signup_email("  Ada.Lovelace+ai@Gmail.COM ") == "ada.lovelace+ai@gmail.com"
    assert validate_signup_email("user@bücher.de") == "user@xn--bcher-kva.de"


@pytest.mark.parametrize(
    "email",
    [
        None,
        42,
        "",
        "   ",
        "plain",
        "@example.com",
        "a@",
        "a@b",
        "a@@example.com",
        "a b@example.com",
        "a@exa mple.com",
        ".a@example.com",
        "a..b@example.com",
        "a@-example.com",
        "a@example.c",
        "a@example.123",
        "x" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
        "a@users.privy.invalid",  # reserved TLD: the placeholder domain cannot be claimed
        "a@localhost.localhost",
        "<script>@example.com",
    ],
)
def test_invalid_addresses_are_400(email: object) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_signup_email(email)
    assert info.value.status == 400
    assert info.value.param == "email"
