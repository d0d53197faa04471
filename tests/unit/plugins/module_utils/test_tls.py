# SPDX-License-Identifier: GPL-3.0-or-later
"""A certificate's validity read from its PEM file on a host with no X.509 library, and how soon is too soon."""

from __future__ import annotations

import base64
import datetime

import pytest

from ansible_collections.pinned.release.plugins.module_utils._tls import (
    CertificateError,
    expiry_problem,
    file_problem,
    pem_validity,
)
from tests.support.certificates import issue

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CA = issue("lab CA", NOW - datetime.timedelta(days=30), NOW + datetime.timedelta(days=3650))


@pytest.mark.parametrize(
    ("not_before", "not_after"),
    [
        (datetime.datetime(2026, 11, 1, tzinfo=UTC), datetime.datetime(2027, 2, 1, 8, 30, tzinfo=UTC)),
        # from 2050 X.509 writes GeneralizedTime instead of UTCTime
        (datetime.datetime(2049, 12, 31, tzinfo=UTC), datetime.datetime(2051, 6, 1, tzinfo=UTC)),
        # UTCTime years 50-99 are the 1900s (1969-1999 would pass without the rule: strptime maps those itself)
        (datetime.datetime(1955, 1, 1, tzinfo=UTC), datetime.datetime(2030, 1, 1, tzinfo=UTC)),
    ],
)
def test_the_validity_dates_are_read_from_the_first_certificate(not_before, not_after):
    leaf = issue("acme.example", not_before, not_after, ca=CA)
    chain = "# the server's certificate, then its chain\n" + leaf.pem + CA.pem
    assert pem_validity(chain) == (not_before, not_after)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no PEM certificate"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "not valid base64"),
        (
            "-----BEGIN CERTIFICATE-----\n"
            + base64.b64encode(b"\x02\x01\x05").decode()
            + "\n-----END CERTIFICATE-----",
            "not an X.509 certificate",
        ),
        (
            "-----BEGIN CERTIFICATE-----\n"
            + base64.b64encode(b"\x30\x84\xff\xff\xff\xff").decode()
            + "\n-----END CERTIFICATE-----",
            "cut short",
        ),
    ],
)
def test_a_file_that_holds_no_readable_certificate_says_why(text, reason):
    with pytest.raises(CertificateError, match=reason):
        pem_validity(text)


def test_a_certificate_cut_anywhere_is_an_error_never_an_exception_of_another_kind():
    leaf = issue("acme.example", NOW, NOW + datetime.timedelta(days=90), ca=CA)
    der = leaf.certificate.public_bytes(__import__("cryptography.hazmat.primitives.serialization",
                                                   fromlist=["Encoding"]).Encoding.DER)  # fmt: skip
    for size in range(0, 300, 7):
        pem = "-----BEGIN CERTIFICATE-----\n" + base64.b64encode(der[:size]).decode() + "\n-----END CERTIFICATE-----"
        with pytest.raises(CertificateError):
            pem_validity(pem)


@pytest.mark.parametrize(
    ("not_after", "min_days", "expected"),
    [
        (NOW + datetime.timedelta(days=90), 14, None),
        (NOW + datetime.timedelta(days=14, seconds=1), 14, None),
        (
            NOW + datetime.timedelta(days=13, hours=23),
            14,
            "expires in 13 day(s) (2026-12-17 UTC), sooner than the 14 days",
        ),
        (NOW + datetime.timedelta(hours=5), 14, "expires in 5 hour(s)"),
        (NOW + datetime.timedelta(minutes=20), 14, "expires within the hour"),
        (NOW + datetime.timedelta(days=3), 0, None),
        (NOW, 14, "expired on 2026-12-03 12:00 UTC"),
        (NOW - datetime.timedelta(days=2), 0, "expired on 2026-12-01 12:00 UTC"),
    ],
)
def test_how_soon_is_too_soon(not_after, min_days, expected):
    problem = expiry_problem(not_after, NOW, min_days)
    assert (problem is None) if expected is None else (expected in problem)


def test_a_certificate_not_valid_yet_is_a_problem():
    assert "not valid before 2026-12-05" in expiry_problem(NOW + datetime.timedelta(days=90), NOW, 14,
                                                           NOW + datetime.timedelta(days=2))  # fmt: skip


def test_the_file_check_names_the_file_when_it_cannot_be_read(tmp_path):
    assert (
        file_problem(str(tmp_path / "missing.crt"), NOW, 14)
        == f"{tmp_path}/missing.crt cannot be read (No such file or directory)"
    )
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    assert file_problem(str(tmp_path / "key.pem"), NOW, 14).startswith(f"{tmp_path}/key.pem: no PEM certificate")


def test_the_file_check_judges_the_certificate_in_the_file(tmp_path):
    soon = issue("acme.example", NOW - datetime.timedelta(days=80), NOW + datetime.timedelta(days=5), ca=CA)
    later = issue("acme.example", NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=60), ca=CA)
    soon_path, _key = soon.write(tmp_path, "soon")
    later_path, _key = later.write(tmp_path, "later")
    assert "expires in 5 day(s)" in file_problem(str(soon_path), NOW, 14)
    assert file_problem(str(soon_path), NOW, 3) is None
    assert file_problem(str(later_path), NOW, 14) is None
