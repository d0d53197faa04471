# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tenant's TLS certificate: when it stops being valid, read from its PEM file, and how soon is too soon.

The drift check runs on the hosts, where no X.509 library can be assumed: the validity dates are read from the
certificate's DER encoding directly (the first certificate of the file, the server's own; the chain after it is
not judged here). Whether nginx serves it, for the right name and from a trusted CA, is the checklist's
``certificate`` check, over a real TLS handshake.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from typing import Optional

DEFAULT_MIN_DAYS = 14
PEM_CERTIFICATE_RE = re.compile(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)
SEQUENCE, UTC_TIME, GENERALIZED_TIME, EXPLICIT_VERSION = 0x30, 0x17, 0x18, 0xA0


class CertificateError(ValueError):
    """The file holds no certificate that can be read; the message says why."""


def _element(der: bytes, offset: int) -> tuple:
    """(tag, start of the content, end of the content) of the DER element at ``offset``."""
    if offset + 2 > len(der):
        raise CertificateError("the certificate is cut short")
    tag, length = der[offset], der[offset + 1]
    start = offset + 2
    if length & 0x80:  # long form: the next (length & 0x7f) bytes are the length
        size = length & 0x7F
        if size == 0 or size > 4 or start + size > len(der):
            raise CertificateError("the certificate has a length it cannot have")
        length = int.from_bytes(der[start : start + size], "big")
        start += size
    if start + length > len(der):
        raise CertificateError("the certificate is cut short")
    return tag, start, start + length


def _time(tag: int, text: bytes) -> datetime.datetime:
    value = text.decode("ascii", "replace")
    try:
        if tag == UTC_TIME:  # YYMMDDHHMMSSZ: years 50-99 are 1950-1999 (RFC 5280)
            parsed = datetime.datetime.strptime(value, "%y%m%d%H%M%SZ")
            if parsed.year >= 2050:
                parsed = parsed.replace(year=parsed.year - 100)
        elif tag == GENERALIZED_TIME:
            parsed = datetime.datetime.strptime(value, "%Y%m%d%H%M%SZ")
        else:
            raise CertificateError("the certificate's validity is not a time")
    except ValueError as exc:
        if isinstance(exc, CertificateError):
            raise
        raise CertificateError(f"the certificate's validity {value!r} is not a time") from None
    return parsed.replace(tzinfo=datetime.timezone.utc)


def validity(der: bytes) -> tuple:
    """(not before, not after) of a DER certificate, as UTC datetimes."""
    tag, start, _end = _element(der, 0)
    if tag != SEQUENCE:
        raise CertificateError("this is not an X.509 certificate")
    tag, offset, _end = _element(der, start)  # tbsCertificate
    if tag != SEQUENCE:
        raise CertificateError("this is not an X.509 certificate")
    fields = []
    while len(fields) < 4:  # [version,] serial, signature algorithm, issuer, validity
        tag, content, end = _element(der, offset)
        if not fields and tag == EXPLICIT_VERSION:
            offset = end
            continue
        fields.append((tag, content, end))
        offset = end
    tag, content, _end = fields[3]
    if tag != SEQUENCE:
        raise CertificateError("the certificate has no validity where X.509 puts it")
    not_before_tag, start, stop = _element(der, content)
    not_after_tag, after_start, after_stop = _element(der, stop)
    return _time(not_before_tag, der[start:stop]), _time(not_after_tag, der[after_start:after_stop])


def pem_validity(text: str) -> tuple:
    """(not before, not after) of the first certificate in a PEM file's text."""
    match = PEM_CERTIFICATE_RE.search(text)
    if not match:
        raise CertificateError("no PEM certificate (BEGIN CERTIFICATE) in it")
    try:
        der = base64.b64decode("".join(match.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError("its certificate is not valid base64") from None
    return validity(der)


def expiry_problem(not_after: datetime.datetime, now: datetime.datetime, min_days: int,
                   not_before: Optional[datetime.datetime] = None) -> Optional[str]:  # fmt: skip
    """Why a certificate valid until ``not_after`` is not good enough at ``now``, or None."""
    if not_before is not None and now < not_before:
        return f"not valid before {not_before:%Y-%m-%d %H:%M} UTC"
    if now >= not_after:
        return f"expired on {not_after:%Y-%m-%d %H:%M} UTC"
    left = not_after - now
    if left < datetime.timedelta(days=min_days):
        days = left.days
        hours = left.seconds // 3600
        when = f"in {days} day(s)" if days else f"in {hours} hour(s)" if hours else "within the hour"
        return f"expires {when} ({not_after:%Y-%m-%d} UTC), sooner than the {min_days} days required: renew it"
    return None


def file_problem(path: str, now: datetime.datetime, min_days: int) -> Optional[str]:
    """What is wrong with the certificate file at ``path`` at ``now`` (unreadable, expired, expiring), or None."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read(1024 * 1024)
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc})"
    try:
        not_before, not_after = pem_validity(text)
    except CertificateError as exc:
        return f"{path}: {exc}"
    return expiry_problem(not_after, now, min_days, not_before)
