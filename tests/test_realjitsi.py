"""The pure parts of ``make test-jitsi`` (realjitsi/): stanzas, room names, table, configuration.

The run itself needs Jitsi's plugins and is not part of ``make test``; what it
builds and reads without a server is checked here.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from realjitsi import stanzas
from realjitsi.__main__ import affiliation_module, plugin_paths
from realjitsi.checks import backend_safe, room_segment
from realjitsi.prosody import JitsiHost, TokenSettings, configuration, lua_string
from realjitsi.stanzas import ForgedIdentity, read_presence
from realjitsi.table import Row, exit_code, render

CLIENT = "{jabber:client}"


def test_a_join_is_what_the_web_app_sends() -> None:
    frame = stanzas.join_presence("mathe%207b@conference.meet.example/ab12cd34", "Max <&> Ö")
    presence = stanzas.parse(frame)
    # RFC 7395: the stanza namespace is declared on the stanza itself, never a prefix.
    assert frame.startswith('<presence xmlns="jabber:client"')
    assert presence.tag == f"{CLIENT}presence"
    assert presence.get("to") == "mathe%207b@conference.meet.example/ab12cd34"
    assert presence.find("{http://jabber.org/protocol/muc}x") is not None
    assert presence.findtext("{http://jabber.org/protocol/nick}nick") == "Max <&> Ö"
    assert presence.find(f"{CLIENT}identity") is None


def test_a_forged_identity_is_sent_where_presence_identity_looks() -> None:
    frame = stanzas.join_presence(
        "r@c/n", "Anna", identity=ForgedIdentity("Anna Müller", "anna@school.example", "owner")
    )
    # What the pupil sends is read back the way the room's presence is read.
    seen = read_presence(stanzas.parse(frame.replace("<presence ", '<presence from="r@c/n" ')))
    assert (seen.identity_name, seen.identity_email, seen.identity_affiliation) == (
        "Anna Müller",
        "anna@school.example",
        "owner",
    )


def test_sasl_plain_carries_user_and_password_after_nul_bytes() -> None:
    auth = stanzas.parse(stanzas.sasl_plain("focus", "pässword"))
    assert auth.get("mechanism") == "PLAIN"
    assert base64.b64decode(auth.text or "") == "\0focus\0pässword".encode()


def test_the_lobby_form_sets_members_only() -> None:
    iq = stanzas.parse(stanzas.members_only("room@conference.x", "7", enabled=True))
    fields = {
        field.get("var"): field.findtext("{jabber:x:data}value")
        for field in iq.iter("{jabber:x:data}field")
    }
    assert iq.get("type") == "set"
    assert iq.get("id") == "7"
    assert fields == {
        "FORM_TYPE": "http://jabber.org/protocol/muc#roomconfig",
        "muc#roomconfig_membersonly": "true",
    }


def test_a_room_presence_is_read_for_affiliation_role_and_self() -> None:
    frame = (
        '<presence xmlns="jabber:client" from="r@conference.x/ab12">'
        '<x xmlns="http://jabber.org/protocol/muc#user">'
        '<item affiliation="owner" role="moderator"/><status code="110"/></x>'
        '<nick xmlns="http://jabber.org/protocol/nick">Anna</nick>'
        "<identity><user><name>Anna Müller</name><email></email></user></identity></presence>"
    )
    seen = read_presence(stanzas.parse(frame))
    assert (seen.affiliation, seen.role, seen.nick, seen.is_self) == (
        "owner",
        "moderator",
        "Anna",
        True,
    )
    assert seen.occupant_nick == "ab12"
    assert seen.identity_name == "Anna Müller"
    assert not seen.error


def test_another_occupants_presence_is_not_ones_own() -> None:
    frame = (
        '<presence xmlns="jabber:client" from="r@c/x">'
        '<x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="member"/>'
        '<status code="100"/></x></presence>'
    )
    assert not read_presence(stanzas.parse(frame)).is_self


def test_a_lobby_refusal_names_its_condition_and_the_lobby() -> None:
    frame = (
        '<presence xmlns="jabber:client" type="error" from="r@conference.x/ab12">'
        '<error type="auth"><registration-required xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>'
        '<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">members only</text>'
        '<lobbyroom xmlns="http://jitsi.org/protocol/lobbyrooms">r@lobby.x</lobbyroom>'
        "</error></presence>"
    )
    seen = read_presence(stanzas.parse(frame))
    assert seen.error == "registration-required"
    assert seen.lobby_room == "r@lobby.x"
    assert seen.affiliation == ""


@pytest.mark.parametrize(
    ("room", "node"),
    [
        ("Mathe7b", "mathe7b"),
        ("Mathe 7b", "mathe%207b"),
        ("Übung", "%c3%bcbung"),
        ("C++", "c%2b%2b"),
        ("100%", "100%25"),
        # A name that looks encoded is a name: decoded once, as the address was.
        ("a%20b", "a%2520b"),
        ("\uff2d\uff41\uff54\uff48\uff45 8", "mathe%208"),
        ("(Physik)!~", "(physik)!~"),
    ],
)
def test_room_nodes_follow_the_web_apps_backend_safe_name(room: str, node: str) -> None:
    assert backend_safe(room_segment(room)) == node


def test_a_malformed_escape_is_kept_as_the_web_app_keeps_it() -> None:
    # decodeURIComponent throws on "%zz"; getBackendSafeRoomName goes on undecoded.
    assert backend_safe("a%zz") == "a%25zz"


def test_the_table_marks_failures_and_sums_up() -> None:
    rows = [Row("room teacher", "owner", "owner"), Row("lobby", "owner", "refused\n(x)")]
    text = render(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["check", "expected", "got", "ok"]
    assert lines[2].endswith("ok")
    assert lines[3].endswith("FAIL")
    assert "refused (x)" in lines[3]
    assert lines[-1] == "1 of 2 checks passed, 1 failed"
    assert exit_code(rows) == 1
    assert exit_code(rows[:1]) == 0
    # No checks at all is no success.
    assert exit_code([]) == 1


def test_the_table_lines_up_wide_characters() -> None:
    text = render([Row("日本語", "owner", "owner"), Row("abc", "owner", "owner")])
    # Each of the three CJK characters takes two columns: the next column starts
    # where it starts for the narrow name.
    first, second = text.splitlines()[2:4]
    assert first.index("owner") + 3 == second.index("owner")


def test_lua_strings_are_escaped() -> None:
    assert lua_string('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def host(tmp_path: Path, token: TokenSettings) -> JitsiHost:
    return JitsiHost(
        domain="meet.example",
        plugin_paths=(tmp_path / "jitsi", tmp_path / "contrib" / "token_lobby_bypass"),
        token=token,
        host_modules=("websocket", "muc_size"),
        conference_modules=("token_verification", "token_affiliation"),
    )


def test_the_configuration_is_a_jitsi_hosts_with_a_shared_secret(tmp_path: Path) -> None:
    token = TokenSettings(app_id="school-meet", app_secret='se"cret')
    text = configuration(host(tmp_path, token), tmp_path, http_port=5281, c2s_port=5223)
    assert 'VirtualHost "meet.example"\n    authentication = "token"' in text
    assert 'app_secret = "se\\"cret"' in text
    assert "asap_key_server" not in text
    assert 'Component "conference.meet.example" "muc"' in text
    assert 'Component "lobby.meet.example" "muc"' in text
    assert 'modules_enabled = { "token_verification"; "token_affiliation" }' in text
    assert 'admins = { "focus@auth.meet.example" }' in text
    assert "http_ports = { 5281 }" in text
    assert f'"{tmp_path / "contrib" / "token_lobby_bypass"}"' in text
    # Nothing of the run outside its directory.
    assert f'data_path = "{tmp_path / "data"}"' in text


def test_rs256_names_the_key_server_and_no_secret(tmp_path: Path) -> None:
    token = TokenSettings(
        app_id="school-meet", algorithm="RS256", asap_key_server="http://127.0.0.1:1/auth/asap"
    )
    text = configuration(host(tmp_path, token), tmp_path, http_port=5281, c2s_port=5223)
    assert 'asap_key_server = "http://127.0.0.1:1/auth/asap"' in text
    assert 'signature_algorithm = "RS256"' in text
    assert "app_secret" not in text


def test_contrib_modules_are_found_in_their_own_folders(tmp_path: Path) -> None:
    jitsi = tmp_path / "jitsi"
    jitsi.mkdir()
    (jitsi / "mod_auth_token.lua").write_text("")
    contrib = tmp_path / "contrib"
    for name in ("token_lobby_bypass", "token_affiliation_legacy"):
        (contrib / name).mkdir(parents=True)
        (contrib / name / f"mod_{name}.lua").write_text("")
    (contrib / "images").mkdir()
    paths = plugin_paths(jitsi, contrib)
    assert paths == (
        jitsi,
        contrib / "token_affiliation_legacy",
        contrib / "token_lobby_bypass",
    )
    # An older jitsi-meet has no token_affiliation of its own: jitsi-contrib's is used.
    assert affiliation_module(paths) == "token_affiliation_legacy"
    (jitsi / "mod_token_affiliation.lua").write_text("")
    assert affiliation_module(paths) == "token_affiliation"
