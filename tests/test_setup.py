"""``jitsi-auth-sidecar setup`` on folders shaped like a Jitsi host, against a real slapd.

The Debian tree and the docker-jitsi-meet tree come from tests/jitsi_trees.py;
nginx's own ``nginx -t`` judges the nginx files setup writes, and the token a
teacher then gets is checked against the secret setup wrote into Prosody's
file, by tests/jitsi_rules.py's reading of Prosody's rules.
"""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.school import SCHOOL
from demo.slapd import Slapd
from sidecar.admin.jitsi_edits import env_values, without_upstream
from sidecar.cli import main
from sidecar.config.settings import load_settings
from tests.jitsi_rules import JitsiSite, admit
from tests.jitsi_trees import DOMAIN, REPOSITORY, debian_tree, docker_tree

NGINX = "/usr/sbin/nginx"
ETC = "etc/jitsi-auth-sidecar"
PROSODY = f"etc/prosody/conf.avail/{DOMAIN}.cfg.lua"
SITE = f"etc/nginx/sites-available/{DOMAIN}.conf"
JICOFO = "etc/jitsi/jicofo/jicofo.conf"


# What nginx -t itself leaves (pid file, temporary folders, empty log): not setup's.
NGINX_RUNTIME = ("run/", "var/lib/nginx/", "var/log/nginx/")


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` (symbolic links as their target's name), with its mode."""
    files: dict[str, tuple[bytes, int]] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if (name + "/").startswith(NGINX_RUNTIME):
            continue
        if path.is_symlink():
            files[name] = (os.readlink(path).encode(), 0)
        elif path.is_file():
            files[name] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
        elif path.is_dir():
            files[name + "/"] = (b"", stat.S_IMODE(path.stat().st_mode))
    return files


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "service-password"
    path.write_text(SCHOOL.service_password + "\n", "utf-8")
    return path


def directory_options(slapd: Slapd, password_file: Path) -> list[str]:
    return [
        "--ldap-url",
        slapd.ldap_url,
        "--bind-dn",
        SCHOOL.service_dn,
        "--bind-password-file",
        str(password_file),
        "--user-base",
        SCHOOL.people_dn,
        "--teachers-group",
        SCHOOL.teachers_group_dn,
        "--pupils-group",
        SCHOOL.pupils_group_dn,
    ]


@dataclass
class Setup:
    """``jitsi-auth-sidecar setup`` on a tree, its output captured; ``directory``:
    the answers about the test's slapd."""

    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    directory: list[str]

    def __call__(self, root: Path, *options: str, stdin: str = "") -> tuple[int, str, str]:
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["setup", "--root", str(root), "--nginx", NGINX, *options])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def answered(self, root: Path, *, reloaded: Path | None = None) -> tuple[int, str, str]:
        """Every question answered: yes to all, the directory's answers, and a
        reload that makes the file ``reloaded`` (none without)."""
        reload = ["--reload-command", f"touch {reloaded}"] if reloaded else ["--no-reload"]
        return self(root, "--yes", *reload, *self.directory)


@pytest.fixture
def run(
    slapd: Slapd,
    password_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Setup:
    return Setup(capsys, monkeypatch, directory_options(slapd, password_file))


@pytest.fixture
def debian(tmp_path: Path) -> Path:
    return debian_tree(tmp_path / "root")


def nginx_test(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NGINX, "-t", "-q", "-c", str(conf)], capture_output=True, text=True, check=False
    )


def section(text: str, header: str) -> str:
    """A Prosody section: from its header line to the next VirtualHost or Component."""
    start = text.index(header)
    rest = text[start + len(header) :]
    following = re.search(r'^\s*(?:VirtualHost|Component) "', rest, re.MULTILINE)
    return rest[: following.start()] if following else rest


def test_debian_setup_wires_jitsi_and_a_teacher_gets_an_accepted_token(
    debian: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    run: Setup,
) -> None:
    before = snapshot(debian)
    reloaded = debian.parent / "reloaded"
    code, out, err = run.answered(debian, reloaded=reloaded)
    assert code == 0, err
    assert "nginx -t: the configuration is fine" in out
    assert reloaded.exists()
    app_secret = (debian / ETC / "app_secret").read_bytes()
    # The package's secret is kept (Prosody gets that one), and never shown.
    assert app_secret == before[f"{ETC}/app_secret"][0]
    assert app_secret.strip().decode() not in out
    assert (debian / ETC / "ldap_password").read_text() == SCHOOL.service_password
    assert stat.S_IMODE((debian / ETC / "ldap_password").stat().st_mode) == 0o600

    prosody = (debian / PROSODY).read_text()
    main_host = section(prosody, f'VirtualHost "{DOMAIN}"')
    conference = section(prosody, f'Component "conference.{DOMAIN}" "muc"')
    # The token settings come after Jitsi's own authentication line, so they win.
    assert main_host.index('authentication = "token"') > main_host.index("jitsi-anonymous")
    assert f'app_secret = "{app_secret.decode().strip()}"' in main_host
    assert 'app_id = "jitsi-auth-sidecar"' in main_host
    assert "allow_empty_token = false" in main_host
    for module in ("presence_identity", "muc_size"):
        assert f'"{module}";' in main_host.split("modules_enabled", 1)[1].split("}", 1)[0]
    modules = conference.split("modules_enabled", 1)[1].split("}", 1)[0]
    for module in ("token_verification", "token_affiliation", "token_lobby_bypass"):
        assert f'\n        "{module}";' in modules
    assert "muc_displayname" in modules
    assert "jicofo.conference.enable-auto-owner = false" in (debian / JICOFO).read_text()

    site = (debian / SITE).read_text()
    meet_server = site[site.index("ssl;") :]
    assert meet_server.index("include snippets/jitsi-auth-sidecar.conf;") < meet_server.index(
        "location"
    )
    assert nginx_test(debian / "etc/nginx/nginx.conf").returncode == 0

    # The configuration written is the daemon's, with the package's credentials.
    settings = load_settings(
        debian / ETC / "config.toml", environ={"CREDENTIALS_DIRECTORY": str(debian / ETC)}
    )
    assert settings.jitsi.subject == DOMAIN
    assert settings.server.public_url == f"https://{DOMAIN}"
    # A teacher's token, as the sidecar mints it, is one Prosody accepts as moderator.
    teacher = SCHOOL.teachers[0]
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(debian / ETC))
    assert (
        main(
            [
                "mint",
                "--config",
                str(debian / ETC / "config.toml"),
                "--user",
                teacher.uid,
                "--room",
                "Mathe7b",
            ]
        )
        == 0
    )
    token = capsys.readouterr().out.strip()
    prosody_secret = re.search(r'app_secret = "([^"]+)"', main_host)
    assert prosody_secret is not None
    site_rules = JitsiSite(
        app_id="jitsi-auth-sidecar", app_secret=prosody_secret[1].encode(), subject=DOMAIN
    )
    assert admit(token, site_rules, "mathe7b").moderator is True

    # A second run with the same answers changes nothing and reloads nothing.
    after = snapshot(debian)
    reloaded.unlink()
    code, out, err = run.answered(debian, reloaded=reloaded)
    assert code == 0, err
    assert "nothing to change" in out
    assert snapshot(debian) == after
    assert not reloaded.exists()
    # Nor does a run without the options: it starts from what the first one wrote.
    code, out, err = run(debian, "--yes", "--no-reload")
    assert code == 0, err
    assert snapshot(debian) == after

    # --undo: every file as before, byte for byte and mode for mode.
    code, out, err = run(debian, "--undo", "--no-reload")
    assert code == 0, err
    assert snapshot(debian) == before


def test_dry_run_shows_the_diff_and_writes_nothing(debian: Path, run: Setup) -> None:
    before = snapshot(debian)
    code, out, err = run(debian, "--dry-run", *run.directory)
    assert code == 0, err
    assert snapshot(debian) == before
    assert f"+++ /{PROSODY}" in out
    assert '+    authentication = "token"' in out
    assert "+    include snippets/jitsi-auth-sidecar.conf;" in out
    assert "+jicofo.conference.enable-auto-owner = false" in out
    # Secrets stay hidden: the app secret in Prosody's diff, the password file whole.
    assert (debian / ETC / "app_secret").read_text().strip() not in out
    assert 'app_secret = "********"' in out
    assert SCHOOL.service_password not in out
    assert "nothing written" in out


def test_answers_are_checked_live_and_asked_again(debian: Path, run: Setup) -> None:
    options = list(run.directory)
    typo = SCHOOL.teachers_group_dn.replace("cn=", "cn=x", 1)
    options[options.index(SCHOOL.teachers_group_dn)] = typo
    # The typo is refused, the right DN given, then every file agreed to but jicofo's.
    answers = SCHOOL.teachers_group_dn + "\n" + "y\ny\ny\nn\ny\n"
    code, out, err = run(debian, *options, "--no-reload", stdin=answers)
    assert code == 0, err
    assert f"FAILED  the group {typo!r} does not exist" in out
    config = (debian / ETC / "config.toml").read_text()
    assert SCHOOL.teachers_group_dn in config
    assert typo not in config
    assert "enable-auto-owner" not in (debian / JICOFO).read_text()
    assert 'authentication = "token"' in (debian / PROSODY).read_text()


def test_a_wrong_service_password_stops_before_any_change(
    debian: Path, slapd: Slapd, tmp_path: Path, run: Setup
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password", "utf-8")
    before = snapshot(debian)
    code, out, err = run(debian, "--yes", *directory_options(slapd, wrong))
    assert code == 1
    assert f"refused the password of {SCHOOL.service_dn}" in err + out
    assert snapshot(debian) == before


def test_a_missing_upstream_is_named_before_any_change(debian: Path, run: Setup) -> None:
    (debian / "etc/nginx/conf.d/jitsi-auth-sidecar-upstream.conf").unlink()
    before = snapshot(debian)
    code, _out, err = run.answered(debian)
    assert code == 2
    assert "/etc/nginx/conf.d/jitsi-auth-sidecar-upstream.conf" in err
    assert snapshot(debian) == before


def test_a_failing_nginx_test_puts_every_file_back(debian: Path, run: Setup) -> None:
    # An include nginx refuses: the site with it must not stay, nor anything else.
    (debian / "etc/nginx/snippets/jitsi-auth-sidecar.conf").write_text("location {\n", "utf-8")
    before = snapshot(debian)
    reloaded = debian.parent / "reloaded"
    code, _out, err = run.answered(debian, reloaded=reloaded)
    assert code == 1
    assert "nginx -t failed, every file of this run put back" in err
    assert snapshot(debian) == before
    assert not reloaded.exists()


def test_undo_leaves_a_file_the_admin_changed_since(debian: Path, run: Setup) -> None:
    before = snapshot(debian)
    options = list(run.directory)
    assert run(debian, "--yes", "--no-reload", *options)[0] == 0
    edited = (debian / JICOFO).read_text() + "# the admin's own line\n"
    (debian / JICOFO).write_text(edited, "utf-8")
    code, out, _ = run(debian, "--undo", "--no-reload")
    assert code == 1
    assert f"left alone {debian / JICOFO}" in out
    assert (debian / JICOFO).read_text() == edited
    assert (debian / PROSODY).read_bytes() == before[PROSODY][0]
    assert (debian / SITE).read_bytes() == before[SITE][0]


def test_no_jitsi_is_said_plainly(tmp_path: Path, run: Setup) -> None:
    code, _, err = run(tmp_path, "--yes")
    assert code == 2
    assert "no Jitsi Meet site found" in err


def test_docker_setup_writes_env_and_the_custom_include(tmp_path: Path, run: Setup) -> None:
    root = tmp_path / "root"
    checkout = docker_tree(root)
    before = snapshot(root)
    include = REPOSITORY / "nginx" / "jitsi-auth-sidecar.conf"
    options = [
        "--docker",
        "/srv/docker-jitsi-meet",
        "--include",
        str(include),
        "--no-reload",
        *run.directory,
    ]
    code, out, err = run(root, "--yes", *options)
    assert code == 0, err
    assert "nginx -t: the configuration is fine" in out
    custom = root / "srv/jitsi-meet-cfg/web/nginx-custom/jitsi-auth-sidecar.conf"
    # The container reads no http-level file of the sidecar's: the checks go to
    # the socket straight (and nginx -t above passed without the upstream).
    written = custom.read_text("utf-8")
    assert written == without_upstream(include.read_text("utf-8"))
    assert "http://jitsi_auth_sidecar" not in written
    assert "proxy_pass http://unix:/run/jitsi-auth-sidecar/http.sock:/auth/verify;" in written
    env = (checkout / ".env").read_text()
    values = env_values(env)
    app_secret = (root / ETC / "app_secret").read_text().strip()
    assert values["ENABLE_AUTH"] == "1"
    assert values["AUTH_TYPE"] == "jwt"
    assert values["ENABLE_GUESTS"] == "0"
    assert values["JWT_APP_SECRET"] == app_secret
    assert values["JWT_ALLOW_EMPTY"] == "0"
    assert values["ENABLE_AUTO_OWNER"] == "0"
    assert values["XMPP_MODULES"].split(",") == ["presence_identity", "muc_size"]
    assert set(values["XMPP_MUC_MODULES"].split(",")) == {
        "token_affiliation",
        "token_lobby_bypass",
        "muc_displayname",
    }
    # What the admin had stays as it was, above the block.
    assert env.startswith((checkout / ".env").read_text().split("# BEGIN")[0])
    assert "JICOFO_AUTH_PASSWORD=jicofo-password\n" in env
    assert "mod_token_affiliation.lua" in out  # jitsi-contrib's modules are not there yet
    config = load_settings(
        root / ETC / "config.toml", environ={"CREDENTIALS_DIRECTORY": str(root / ETC)}
    )
    assert config.jitsi.subject == "meet.jitsi"
    assert config.server.public_url == f"https://{DOMAIN}"

    after = snapshot(root)
    code, out, err = run(root, "--yes", *options)
    assert code == 0, err
    assert "nothing to change" in out
    assert snapshot(root) == after

    code, out, err = run(root, "--undo", "--docker", "/srv/docker-jitsi-meet", "--no-reload")
    assert code == 0, err
    assert snapshot(root) == before


def test_docker_include_is_tested_by_nginx(tmp_path: Path, run: Setup) -> None:
    root = tmp_path / "root"
    docker_tree(root)
    broken = tmp_path / "broken.conf"
    broken.write_text("location = /x { proxy_pass; }\n", "utf-8")
    before = snapshot(root)
    code, _, err = run(
        root,
        "--yes",
        "--no-reload",
        "--docker",
        "/srv/docker-jitsi-meet",
        "--include",
        str(broken),
        *run.directory,
    )
    assert code == 1
    assert "nginx -t failed" in err
    assert snapshot(root) == before


def test_a_file_setup_cannot_read_is_named(debian: Path, run: Setup) -> None:
    (debian / JICOFO).write_bytes(b"jicofo { \xff }\n")
    before = snapshot(debian)
    code, _, err = run(debian, "--yes", *run.directory)
    assert code == 2
    assert "not UTF-8" in err
    assert snapshot(debian) == before


def test_every_answer_can_be_typed(debian: Path, slapd: Slapd, run: Setup) -> None:
    """Nothing given on the command line: each question asked in turn, then each file."""
    typed = [
        slapd.ldap_url,
        SCHOOL.service_dn,
        SCHOOL.service_password,
        SCHOOL.people_dn,
        SCHOOL.teachers_group_dn,
        SCHOOL.pupils_group_dn,
    ]
    code, out, err = run(debian, "--no-reload", stdin="\n".join(typed + ["y"] * 8) + "\n")
    assert code == 0, err
    for prompt in ("LDAP URL", "service account DN", "the teachers' group DN"):
        assert f"{prompt}" in out
    settings = load_settings(
        debian / ETC / "config.toml", environ={"CREDENTIALS_DIRECTORY": str(debian / ETC)}
    )
    assert settings.ldap.urls == (slapd.ldap_url,)
    assert settings.ldap.bind_dn == SCHOOL.service_dn
    assert [rule.name for rule in settings.roles] == ["teacher", "pupil"]
    # Input that ends early is an answer missing, said as such; nothing more is written.
    before = snapshot(debian)
    code, out, err = run(
        debian, "--no-reload", "--domain", DOMAIN, "--ldap-url", "ldap://127.0.0.1:1", stdin=""
    )
    assert code == 1
    assert "FAILED  no LDAP server answers at ldap://127.0.0.1:1" in out
    assert "no answer (end of input)" in err
    assert snapshot(debian) == before
