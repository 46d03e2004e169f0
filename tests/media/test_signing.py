"""Signed media links: HMAC over id and expiry; tampered or expired → refused."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from gateway.media.signing import UrlSigner, load_secret


def parts(url: str) -> tuple[str, str, str]:
    u = urlsplit(url)
    q = parse_qs(u.query)
    return u.path.rsplit("/", 1)[-1], q["exp"][0], q["sig"][0]


def test_a_link_verifies_until_it_expires() -> None:
    s = UrlSigner(b"k" * 40, "https://gw.example.com/", 60)
    url = s.url("med_1", now=1000.0)
    assert url.startswith("https://gw.example.com/media/med_1?exp=1060&sig=")
    mid, exp, sig = parts(url)
    assert s.verify(mid, exp, sig, now=1000.0)
    assert s.verify(mid, exp, sig, now=1060.0)
    assert not s.verify(mid, exp, sig, now=1061.0)


def test_tampering_with_any_part_fails() -> None:
    s = UrlSigner(b"k" * 40, "http://h:1", 60)
    mid, exp, sig = parts(s.url("med_1", now=0))
    assert not s.verify("med_2", exp, sig, now=0)
    assert not s.verify(mid, str(int(exp) + 1000), sig, now=0)
    assert not s.verify(mid, exp, sig[:-1] + ("A" if sig[-1] != "A" else "B"), now=0)
    assert not s.verify(mid, None, sig, now=0) and not s.verify(mid, exp, None, now=0)
    assert not s.verify(mid, "1e9", sig, now=0)
    assert not UrlSigner(b"j" * 40, "http://h:1", 60).verify(mid, exp, sig, now=0)


def test_the_secret_is_kept_in_the_data_dir(tmp_path: Path) -> None:
    first = load_secret(tmp_path)
    assert load_secret(tmp_path) == first and len(first) >= 32
    assert (tmp_path / "media_url_secret").stat().st_mode & 0o777 == 0o600
