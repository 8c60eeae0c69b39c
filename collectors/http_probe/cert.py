"""``notAfter`` of a DER certificate, without a crypto library.

``SSLObject.getpeercert()`` returns an empty dict when verification is off
(``tls_verify: false``), but ``getpeercert(binary_form=True)`` always returns the DER
bytes. Reading the validity period takes a few lines of DER (RFC 5280 4.1)::

    Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
        serialNumber INTEGER, signature SEQUENCE, issuer SEQUENCE,
        validity SEQUENCE { notBefore Time, notAfter Time }, ... }, ... }
"""

from __future__ import annotations

from datetime import UTC, datetime

_SEQUENCE = 0x30
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_VERSION = 0xA0


class CertificateError(ValueError):
    """Not a DER certificate this parser understands."""


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the element at ``pos``."""
    if pos + 2 > len(data):
        raise CertificateError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise CertificateError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise CertificateError("truncated DER")
    return tag, pos, pos + length


def _time(tag: int, raw: bytes) -> datetime:
    text = raw.decode("ascii")
    if not text.endswith("Z"):
        raise CertificateError(f"certificate time {text!r} is not in UTC")
    if tag == _UTC_TIME:
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"  # RFC 5280 4.1.2.5.1
    elif tag != _GENERALIZED_TIME:
        raise CertificateError(f"unexpected time tag {tag:#x}")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)


def not_after(der: bytes) -> datetime:
    """The end of the certificate's validity period."""
    tag, start, _ = _tlv(der, 0)
    if tag != _SEQUENCE:
        raise CertificateError("not a DER certificate")
    tag, pos, _ = _tlv(der, start)  # tbsCertificate
    if tag != _SEQUENCE:
        raise CertificateError("no tbsCertificate")
    tag, _, end = _tlv(der, pos)
    if tag == _VERSION:
        pos = end
    for _ in range(3):  # serialNumber, signature, issuer
        _, _, pos = _tlv(der, pos)
    tag, pos, _ = _tlv(der, pos)
    if tag != _SEQUENCE:
        raise CertificateError("no validity period")
    _, _, pos = _tlv(der, pos)  # notBefore
    tag, start, end = _tlv(der, pos)
    try:
        return _time(tag, der[start:end])
    except (UnicodeDecodeError, ValueError) as exc:
        raise CertificateError(f"bad notAfter: {exc}") from None
