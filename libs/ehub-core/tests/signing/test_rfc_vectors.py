"""Known answers from the RFCs themselves: a byte-exact signature base and, Ed25519 being
deterministic, a byte-exact signature (RFC 9421 B.2.6); content digests (RFC 9530 B)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from ehub_core.signing import HubKey, content_digest, verify_content_digest
from ehub_core.signing.components import MessageView, component_ids, signature_base
from ehub_core.signing.structured_fields import InnerList, parse_dictionary

# RFC 9421 B.1.4 test-key-ed25519 (JWK "d", the seed).
SEED = base64.urlsafe_b64decode("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU=")
RFC_PUBLIC_KEY = base64.urlsafe_b64decode("JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs=")
REQUEST = MessageView.for_request(
    "POST",
    "http://example.com/foo?param=Value&Pet=dog",
    [
        ("Host", "example.com"),
        ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("Content-Type", "application/json"),
        (
            "Content-Digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIi"
            "Yllu7BNNyealdVLvRwEmTHWXvJwew==:",
        ),
        ("Content-Length", "18"),
    ],
)
B26_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");'
    'created=1618884473;keyid="test-key-ed25519"'
)
B26_SIGNATURE = (
    "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
)
B26_BASE = (
    '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    '"@method": POST\n'
    '"@path": /foo\n'
    '"@authority": example.com\n'
    '"content-type": application/json\n'
    '"content-length": 18\n'
    '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
    '"content-length");created=1618884473;keyid="test-key-ed25519"'
)


def test_rfc9421_b26_signature_base_and_ed25519_signature_match_byte_for_byte():
    sig_input = parse_dictionary(B26_INPUT)["sig-b26"]
    assert isinstance(sig_input, InnerList)
    base = signature_base(sig_input.items, sig_input.params, REQUEST)
    assert base.decode() == B26_BASE

    when = datetime(2021, 4, 20, tzinfo=UTC)
    key = HubKey(SEED, kid="XX#rfc9421", not_before=when, not_after=when.replace(year=2022))
    assert key.public_key == RFC_PUBLIC_KEY
    assert base64.b64encode(key.sign(base)).decode() == B26_SIGNATURE
    assert key.public_info.verify(base, base64.b64decode(B26_SIGNATURE))


def test_rfc9421_derived_components_of_the_example_request():
    values = {}
    for component in component_ids(
        ["@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query"]
    ):
        line = signature_base([component], {}, REQUEST).decode().split("\n")[0]
        values[component.value] = line.split(": ", 1)[1]
    assert values == {
        "@method": "POST",
        "@target-uri": "http://example.com/foo?param=Value&Pet=dog",
        "@authority": "example.com",
        "@scheme": "http",
        "@request-target": "/foo?param=Value&Pet=dog",
        "@path": "/foo",
        "@query": "?param=Value&Pet=dog",
    }


def test_rfc9530_content_digest_examples():
    body = b'{"hello": "world"}'
    assert content_digest(body) == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    verify_content_digest(REQUEST.fields["content-digest"], body)  # the sha-512 form
