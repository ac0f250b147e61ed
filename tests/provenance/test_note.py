"""C2SP signed notes and tlog checkpoints (provenance.note): the real vectors of golang.org/x/mod (sumdb/note
note_test.go, sumdb/tlog note_test.go) and of the C2SP specs (signed-note.md, tlog-checkpoint.md), round trips,
tampering and malformed input."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance import note as note_module
from provenance.errors import LedgerIntegrityError, ProvenanceConfigError
from provenance.note import (
    Checkpoint,
    Signature,
    checkpoint_text,
    key_hash,
    parse_checkpoint,
    parse_verifier_key,
    sign_note,
    split_note,
    verifier_key,
    verify_note,
)

# golang.org/x/mod sumdb/note/note_test.go (TestNewVerifier, TestNewSigner, TestSign, TestOpen).
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_B64 = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
ENOCH_B64 = "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
PETER_SIG = f"\u2014 PeterNeumann {PETER_B64}\n"
ENOCH_SIG = f"\u2014 EnochRoot {ENOCH_B64}\n"
PETER_NOTE = TEXT + "\n" + PETER_SIG

# c2sp.org/signed-note, "Verifier keys / Example".
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n\n\u2014 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
# c2sp.org/tlog-checkpoint, the example at the top (its verifier key is not published).
C2SP_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u2014 "
    "example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+"
    "xeMcTOAYQ8=\n"
)
# golang.org/x/mod sumdb/tlog/note_test.go (TestFormatTree): root = RecordHash("hello world") = SHA-256(0x00 || ...).
GO_TREE = "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n"


def _peter() -> Ed25519PublicKey:
    return parse_verifier_key(PETER_VKEY)[2]


def _enoch() -> Ed25519PublicKey:
    return parse_verifier_key(ENOCH_VKEY)[2]


def _signer_from_skey(skey: str) -> tuple[str, bytes, Ed25519PrivateKey]:
    """Decode a Go signer key ``PRIVATE+KEY+<name>+<hash>+base64(0x01 || seed)`` (test helper)."""
    private, key, name, hash_hex, data = skey.split("+", 4)
    raw = base64.b64decode(data, validate=True)
    assert (private, key, raw[:1], len(raw)) == ("PRIVATE", "KEY", b"\x01", 33)
    return name, bytes.fromhex(hash_hex), Ed25519PrivateKey.from_private_bytes(raw[1:])


def _code(exc: pytest.ExceptionInfo[LedgerIntegrityError] | pytest.ExceptionInfo[ProvenanceConfigError]) -> str:
    return exc.value.code


def _insert_at_byte(text: str, offset: int, extra: str) -> str:
    """Go's ``s[:offset] + extra + s[offset:]`` on UTF-8 bytes."""
    raw = text.encode()
    return (raw[:offset] + extra.encode() + raw[offset:]).decode()


# --- The Go package's vectors ---------------------------------------------------------------------------------


def test_go_verifier_key_parses_and_round_trips() -> None:
    name, khash, public_key = parse_verifier_key(PETER_VKEY)
    assert (name, khash) == ("PeterNeumann", bytes.fromhex("c74f20a3"))
    assert key_hash(name, public_key) == khash
    assert verifier_key(name, public_key) == PETER_VKEY
    assert verifier_key("EnochRoot", _enoch()) == ENOCH_VKEY
    assert parse_verifier_key(C2SP_VKEY)[:2] == ("example.com/foo", bytes.fromhex("530d903a"))


def test_go_signer_key_matches_its_verifier_key_and_hash() -> None:
    name, khash, private_key = _signer_from_skey(PETER_SKEY)
    assert name == "PeterNeumann"
    assert key_hash(name, private_key.public_key()) == khash == bytes.fromhex("c74f20a3")
    assert verifier_key(name, private_key.public_key()) == PETER_VKEY


def test_key_hash_is_the_truncated_sha256_of_name_newline_type_and_key() -> None:
    public_key = _peter()
    digest = hashlib.sha256(b"PeterNeumann\n\x01" + public_key.public_bytes_raw()).digest()
    assert key_hash("PeterNeumann", public_key) == digest[:4]
    assert int.from_bytes(key_hash("PeterNeumann", public_key), "big") == 0xC74F20A3


def test_sign_reproduces_the_go_signed_note_byte_for_byte() -> None:
    name, _, private_key = _signer_from_skey(PETER_SKEY)
    assert sign_note(TEXT, name, private_key) == PETER_NOTE


def test_go_signed_note_verifies() -> None:
    assert verify_note(PETER_NOTE, {"PeterNeumann": _peter()}) == (TEXT, ["PeterNeumann"])
    assert split_note(PETER_NOTE) == (
        TEXT,
        [Signature("PeterNeumann", bytes.fromhex("c74f20a3"), base64.b64decode(PETER_B64)[4:])],
    )


def test_go_doubly_signed_note_verifies_by_each_and_both_keys() -> None:
    both = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert verify_note(both, [("PeterNeumann", _peter())]) == (TEXT, ["PeterNeumann"])
    assert verify_note(both, {"EnochRoot": _enoch()}) == (TEXT, ["EnochRoot"])
    assert verify_note(both, [("EnochRoot", _enoch()), ("PeterNeumann", _peter())])[1] == [
        "PeterNeumann",
        "EnochRoot",
    ]
    with pytest.raises(LedgerIntegrityError) as exc:
        verify_note(both, {})
    assert _code(exc) == "ledger:untrusted_note"


def test_c2sp_signed_note_example_verifies() -> None:
    name, _, public_key = parse_verifier_key(C2SP_VKEY)
    assert verify_note(C2SP_NOTE, {name: public_key}) == ("This is an example message.\n", ["example.com/foo"])


def test_c2sp_checkpoint_example_parses_and_an_unknown_key_is_not_trusted() -> None:
    text, signatures = split_note(C2SP_CHECKPOINT)
    assert parse_checkpoint(text) == Checkpoint(
        "example.com/behind-the-sofa", 20852163, base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="), ()
    )
    assert [(s.name, len(s.key_hash), len(s.signature)) for s in signatures] == [
        ("example.com/behind-the-sofa", 4, 64)
    ]
    stranger = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(LedgerIntegrityError) as exc:
        verify_note(C2SP_CHECKPOINT, {"example.com/behind-the-sofa": stranger})
    assert _code(exc) == "ledger:untrusted_note"


def test_go_tree_vector_formats_and_parses() -> None:
    root = hashlib.sha256(b"\x00hello world").digest()
    assert checkpoint_text("go.sum database tree", 123456789012, root) == GO_TREE
    assert parse_checkpoint(GO_TREE) == Checkpoint("go.sum database tree", 123456789012, root, ())
    assert parse_checkpoint(GO_TREE + "JOE\n").extensions == ("JOE",)


def _bad_vkey(vkey: str) -> ProvenanceConfigError:
    with pytest.raises(ProvenanceConfigError) as exc:
        parse_verifier_key(vkey)
    assert exc.value.code == "keys:bad_verifier_key", vkey
    return exc.value


def test_go_verifier_key_manglings_are_refused() -> None:
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                _bad_vkey(PETER_VKEY[i:j])
    for i, ch in enumerate(PETER_VKEY):
        _bad_vkey(PETER_VKEY[:i] + chr(ord(ch) + 1) + PETER_VKEY[i + 1 :])
    # Wrong key length and unknown algorithm, each with an adjusted key hash (from note_test.go). Go decodes
    # "BADKEY==" leniently and then refuses the length; its padding bits are not zero, so strict base64 refuses.
    assert "base64" in str(_bad_vkey("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="))
    long_key = base64.b64encode(b"\x01" + _peter().public_bytes_raw() + b"\x00").decode()
    assert "found 33" in str(_bad_vkey(f"PeterNeumann+c74f20a3+{long_key}"))
    assert "01 (Ed25519)" in str(_bad_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"))


@pytest.mark.parametrize(
    ("vkey", "says"),
    [
        (PETER_SKEY, "found a PRIVATE+KEY signer key"),
        ("PeterNeumann+c74f20a3", "found 2"),
        ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "expected 8 lowercase hex digits"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "expected c74f20a3"),
        ("Peter+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "found c74f20a3"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "found 'Peter Neumann'"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "expected standard padded base64"),
        ("PeterNeumann+c74f20a3+", "found no bytes"),
    ],
)
def test_bad_verifier_key_messages_say_expected_and_found(vkey: str, says: str) -> None:
    message = str(_bad_vkey(vkey))
    assert says in message and "expected" in message and "found" in message
    assert "AYEKFALV" not in message  # never echoes a private key


@pytest.mark.parametrize(
    "bad",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        "\ud800" + TEXT + "\n" + PETER_SIG,  # Go's "\xff": not UTF-8
        TEXT + "\n" + "\u2014 Bad Name " + PETER_B64,
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * 101,
        TEXT + "\r\n" + PETER_SIG,
        TEXT + "\n" + "- PeterNeumann " + PETER_B64 + "\n",
        TEXT + "\n" + "\u2014 PeterNeumann " + PETER_B64[:-1] + "\n",  # unpadded
        TEXT + "\n" + "\u2014 PeterNeumann " + PETER_B64[:-2] + "N=\n",  # non-canonical padding bits
        TEXT + "\n" + "\u2014 PeterNeumann x08gow==\n",  # fewer than 5 bytes
        TEXT + "\n" + "\u2014 Peter+Neumann " + PETER_B64 + "\n",
        TEXT + "\n" + "\u2014  " + PETER_B64 + "\n",
    ],
)
def test_malformed_notes_are_refused(bad: str) -> None:
    for call in (lambda: split_note(bad), lambda: verify_note(bad, {"PeterNeumann": _peter()})):
        with pytest.raises(LedgerIntegrityError) as exc:
            call()
        assert _code(exc) == "ledger:bad_note"
        assert "expected" in str(exc.value) and "found" in str(exc.value)


def test_go_invalid_and_unknown_signatures() -> None:
    peter = {"PeterNeumann": _peter()}
    with pytest.raises(LedgerIntegrityError) as exc:
        verify_note(TEXT + "\n" + _insert_at_byte(PETER_SIG, 60, "ABCD"), peter)
    assert _code(exc) == "ledger:bad_note_signature"
    assert "PeterNeumann+c74f20a3" in str(exc.value)
    # Duplicated verified and unverified signatures: the known one counts once, unknown ones are ignored.
    many = PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + _insert_at_byte(ENOCH_SIG, 60, "ABCD")
    assert verify_note(TEXT + "\n" + many, peter) == (TEXT, ["PeterNeumann"])
    # Another name, or another key hash, is another (unknown) key: ignored, so nothing trusted signed.
    for sig in (PETER_SIG.replace("PeterNeumann", "CarmenSandiego"), PETER_SIG.replace("x08g", "xxxx")):
        with pytest.raises(LedgerIntegrityError) as exc:
            verify_note(TEXT + "\n" + sig, peter)
        assert _code(exc) == "ledger:untrusted_note"


# --- Tampering ------------------------------------------------------------------------------------------------


def test_every_single_character_change_is_refused() -> None:
    peter = {"PeterNeumann": _peter()}
    for i, ch in enumerate(PETER_NOTE):
        for other in {chr(ord(ch) + 1), "A" if ch != "A" else "B", "\n" if ch != "\n" else "x"}:
            with pytest.raises(LedgerIntegrityError):
                verify_note(PETER_NOTE[:i] + other + PETER_NOTE[i + 1 :], peter)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_one_changed_byte_of_text_or_signature_is_refused(data: st.DataObject) -> None:
    key = Ed25519PrivateKey.generate()
    note = sign_note("origin\n7\n" + "A" * 43 + "=\n", "log.example/a", key)
    raw = bytearray(note.encode())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        tampered = raw.decode()
    except UnicodeDecodeError:
        return  # not a str, so it can never be passed as a note
    with pytest.raises(LedgerIntegrityError):
        verify_note(tampered, {"log.example/a": key.public_key()})


def test_signature_claiming_a_known_key_but_made_by_another_is_refused() -> None:
    forger = Ed25519PrivateKey.generate()
    raw = bytes.fromhex("c74f20a3") + forger.sign(TEXT.encode())
    forged = f"{TEXT}\n\u2014 PeterNeumann {base64.b64encode(raw).decode()}\n"
    with pytest.raises(LedgerIntegrityError) as exc:
        verify_note(forged, {"PeterNeumann": _peter()})
    assert _code(exc) == "ledger:bad_note_signature"
    # ... even when a valid signature by the same key is there too.
    with pytest.raises(LedgerIntegrityError) as exc:
        verify_note(PETER_NOTE + forged.split("\n\n")[1], {"PeterNeumann": _peter()})
    assert _code(exc) == "ledger:bad_note_signature"


def test_wrong_name_and_unknown_key_signatures_are_ignored_but_some_trusted_signer_is_required() -> None:
    ours, theirs = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    text = checkpoint_text("log.example", 3, bytes(range(32)))
    wrong_name = sign_note(text, "log.example/other", ours)
    unknown = sign_note(text, "log.example", theirs)
    trusted = {"log.example": ours.public_key()}
    for note in (wrong_name, unknown):
        with pytest.raises(LedgerIntegrityError) as exc:
            verify_note(note, trusted)
        assert _code(exc) == "ledger:untrusted_note"
        assert "log.example+" in str(exc.value)
    ours_too = unknown + sign_note(text, "log.example", ours).split("\n\n")[1]
    assert verify_note(ours_too, trusted) == (text, ["log.example"])
    assert verify_note(ours_too, [("log.example", theirs.public_key()), ("log.example", ours.public_key())]) == (
        text,
        ["log.example"],
    )


def test_ambiguous_trusted_keys_are_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(note_module, "key_hash", lambda name, public_key: b"\0\0\0\0")
    pairs = [("log", Ed25519PrivateKey.generate().public_key()), ("log", Ed25519PrivateKey.generate().public_key())]
    with pytest.raises(ProvenanceConfigError) as exc:
        verify_note(PETER_NOTE, pairs)
    assert _code(exc) == "keys:ambiguous_verifier"


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\nb", "a\u2003b", "a\x00b"])
def test_bad_key_names_are_refused(name: str) -> None:
    key = Ed25519PrivateKey.generate()
    for call in (
        lambda: verifier_key(name, key.public_key()),
        lambda: sign_note(TEXT, name, key),
        lambda: verify_note(PETER_NOTE, {name: key.public_key()}),
    ):
        with pytest.raises(ProvenanceConfigError) as exc:
            call()
        assert _code(exc) == "keys:bad_key_name"


def test_sign_note_refuses_text_a_note_cannot_carry() -> None:
    key = Ed25519PrivateKey.generate()
    for text in ("", "no final newline", "tab\there\n", "cr\r\n", "\udc80\n"):
        with pytest.raises(ValueError):
            sign_note(text, "a", key)


# --- Round trips ----------------------------------------------------------------------------------------------

_LINE_CHARS = st.characters(exclude_categories=("Cs", "Cc"))  # no surrogates, no control characters
_LINES = st.text(_LINE_CHARS, min_size=1, max_size=30)
_NAMES = st.text(st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters="+\x85"),
                 min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(_LINES, st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32), st.lists(_LINES, max_size=4))
def test_checkpoint_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    text = checkpoint_text(origin, size, root, extensions)
    assert parse_checkpoint(text) == Checkpoint(origin, size, root, tuple(extensions))
    assert text.count("\n") == 3 + len(extensions) and text.endswith("\n")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(_LINE_CHARS, max_size=20), min_size=1, max_size=6), _NAMES)
def test_sign_verify_round_trip_including_blank_lines_in_the_text(lines: list[str], name: str) -> None:
    key = Ed25519PrivateKey.generate()
    text = "\n".join(lines) + "\n"
    note = sign_note(text, name, key)
    assert verify_note(note, {name: key.public_key()}) == (text, [name])
    assert parse_verifier_key(verifier_key(name, key.public_key()))[:2] == (name, key_hash(name, key.public_key()))
    assert split_note(note)[1][0].key_hash == key_hash(name, key.public_key())


def test_checkpoint_sign_verify_parse() -> None:
    key = Ed25519PrivateKey.generate()
    text = checkpoint_text("log.example/ledger", 0, hashlib.sha256(b"").digest(), ["ext one", "ext+2"])
    note = sign_note(text, "log.example/ledger", key)
    verified, names = verify_note(note, {"log.example/ledger": key.public_key()})
    assert names == ["log.example/ledger"]
    assert parse_checkpoint(verified) == Checkpoint(
        "log.example/ledger", 0, hashlib.sha256(b"").digest(), ("ext one", "ext+2")
    )


# --- Malformed checkpoints ------------------------------------------------------------------------------------

ROOT = "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0="


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "\n",
        "origin\n1\n",
        f"origin\n1\n{ROOT}",
        f"\n1\n{ROOT}\n",
        f"origin\n0xabcdef\n{ROOT}\n",  # from sumdb/tlog TestParseTree
        f"origin\n012\n{ROOT}\n",
        f"origin\n00\n{ROOT}\n",
        f"origin\n-1\n{ROOT}\n",
        f"origin\n+1\n{ROOT}\n",
        f"origin\n 1\n{ROOT}\n",
        f"origin\n1 \n{ROOT}\n",
        f"origin\n\uff11\n{ROOT}\n",  # fullwidth digit one
        f"origin\n1_0\n{ROOT}\n",
        f"origin\n\n{ROOT}\n",
        f"origin\n{2**64}\n{ROOT}\n",
        f"origin\n{'9' * 5000}\n{ROOT}\n",
        "origin\n1\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n",  # from sumdb/tlog TestParseTree
        "origin\n1\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0\n",
        "origin\n1\nTszzRgjTG6xce-z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",
        f"origin\n1\n{base64.b64encode(bytes(31)).decode()}\n",
        "origin\n1\n\n",
        f"origin\n1\n{ROOT}\n\n",
        f"origin\n1\n{ROOT}\next\n\nmore\n",
        f"origin\n1\n{ROOT}\nta\tb\n",
    ],
)
def test_malformed_checkpoints_are_refused(bad: str) -> None:
    with pytest.raises(LedgerIntegrityError) as exc:
        parse_checkpoint(bad)
    assert _code(exc) == "ledger:bad_note"
    assert "expected" in str(exc.value) and "found" in str(exc.value)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, bytes(32), ()),
        ("a\nb", 1, bytes(32), ()),
        ("a\tb", 1, bytes(32), ()),
        ("o", -1, bytes(32), ()),
        ("o", 2**64, bytes(32), ()),
        ("o", True, bytes(32), ()),
        ("o", 1, bytes(31), ()),
        ("o", 1, bytes(33), ()),
        ("o", 1, bytes(32), ("",)),
        ("o", 1, bytes(32), ("a\nb",)),
        ("o", 1, bytes(32), "ext"),
    ],
)
def test_checkpoint_text_refuses_values_the_format_cannot_carry(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError):
        checkpoint_text(origin, size, root, extensions)


def test_verifier_keys_whose_base64_holds_plus_signs_round_trip() -> None:
    keys = [Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32).public_key() for i in range(40)]
    vkeys = [verifier_key("log.example/x", k) for k in keys]
    assert any("+" in v.split("+", 2)[2] for v in vkeys)
    for public_key, vkey in zip(keys, vkeys, strict=True):
        name, khash, parsed = parse_verifier_key(vkey)
        assert (name, khash, parsed.public_bytes_raw()) == (
            "log.example/x",
            key_hash(name, public_key),
            public_key.public_bytes_raw(),
        )
