"""make deb: the package builds, lintian accepts it, and it installs, upgrades,
is removed and purged as an admin would see it.

dpkg installs into a throwaway root (--root) and runs the maintainer scripts
there with --force-script-chrootless: they run on this machine with
DPKG_ROOT set, and every path they touch is under it (systemd is told only
when DPKG_ROOT is empty). The root's dpkg database knows only the packages
the package depends on, copied from this machine's, so a Depends this
machine cannot meet fails the install.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
BUILD = REPOSITORY / "packaging" / "debian" / "build.sh"
PACKAGE = "jitsi-auth-sidecar"
SECRETS = ("app_secret", "session_keys", "guest_keys")


def run(*command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


def field(deb: Path, name: str) -> str:
    return run("dpkg-deb", "--field", deb, name).stdout.strip()


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("deb")
    built = Path(run(BUILD, "--output", output).stdout.strip().splitlines()[-1])
    assert built.name == f"{PACKAGE}_{field(built, 'Version')}_{field(built, 'Architecture')}.deb"
    return built


@pytest.fixture(scope="module")
def lintian(deb: Path) -> Iterator[subprocess.Popen[str]]:
    """lintian runs while the other tests install the package (it takes a while)."""
    process = subprocess.Popen(
        ["lintian", "--no-tag-display-limit", str(deb)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def upgrade(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A later version of the package: a rebuild with a version suffix."""
    version = f"{field(deb, 'Version')}+local1"
    output = tmp_path_factory.mktemp("upgrade")
    later = Path(run(BUILD, "--version", version, "--output", output).stdout.strip())
    assert field(later, "Version") == version
    # Its changelog says so at the top, above the entries of the release.
    extracted = output / "tree"
    run("dpkg-deb", "--extract", later, extracted)
    changelog = extracted / "usr" / "share" / "doc" / PACKAGE / "changelog.Debian.gz"
    latest = run("dpkg-parsechangelog", "-l", changelog, "-S", "Version").stdout.strip()
    assert latest == version
    return later


def dependencies(deb: Path) -> list[str]:
    """The package names in Depends (first of each alternative)."""
    return [
        re.split(r"[\s(]", alternative.split("|")[0].strip())[0]
        for alternative in field(deb, "Depends").split(",")
    ]


@pytest.fixture(scope="module")
def root(
    deb: Path, lintian: subprocess.Popen[str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An empty root for dpkg (lintian starts now, to check the package meanwhile)."""
    root = tmp_path_factory.mktemp("root")
    admin = root / "var" / "lib" / "dpkg"
    (admin / "info").mkdir(parents=True)
    (admin / "updates").mkdir()
    (admin / "available").touch()
    names = dependencies(deb)
    status = run("dpkg-query", "--status", *names).stdout
    (admin / "status").write_text(status)
    for name in re.findall(r"^Package: (\S+)$", status, flags=re.MULTILINE):
        (admin / "info" / f"{name}.list").touch()
        (admin / "info" / f"{name}:{field(deb, 'Architecture')}.list").touch()
    return root


def dpkg(root: Path, *arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return run("dpkg", f"--root={root}", "--force-script-chrootless", "--log=/dev/null", *arguments)


def sidecar(root: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The installed launcher, with the secrets where the unit's LoadCredential= reads them."""
    etc = root / "etc" / PACKAGE
    return subprocess.run(
        [str(root / "opt" / PACKAGE / "bin" / PACKAGE), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CREDENTIALS_DIRECTORY": str(etc)},
    )


def test_package_is_named_and_depends_as_documented(deb: Path) -> None:
    assert field(deb, "Package") == PACKAGE
    names = dependencies(deb)
    assert re.fullmatch(r"python3\.\d+", names[0]), names
    # bonsai was built against the system's libldap, and the package says so.
    assert any(name.startswith("libldap") for name in names), names
    conffiles = run("dpkg-deb", "--info", deb, "conffiles").stdout.split()
    assert conffiles == [
        f"/etc/{PACKAGE}/config.toml",
        f"/etc/nginx/snippets/{PACKAGE}.conf",
        f"/etc/nginx/conf.d/{PACKAGE}-log.conf",
        f"/etc/nginx/conf.d/{PACKAGE}-upstream.conf",
    ]
    listing = run("dpkg-deb", "--contents", deb).stdout
    for path in (
        f"./lib/systemd/system/{PACKAGE}.service",
        f"./lib/systemd/system/{PACKAGE}.socket",
        f"./usr/share/doc/{PACKAGE}/copyright",
        f"./usr/share/doc/{PACKAGE}/changelog.Debian.gz",
        f"./usr/share/doc/{PACKAGE}/README.md",
        f"./usr/share/doc/{PACKAGE}/docs/configuration.md",
        f"./opt/{PACKAGE}/bin/{PACKAGE}",
    ):
        assert f" {path}\n" in listing or f" {path} ->" in listing, path
    # No byte code in the package: postinst writes it, prerm removes it.
    assert "__pycache__" not in listing
    assert "root/root" in listing
    assert not re.search(r"^\S+ (?!root/root)\S+/\S+ ", listing, flags=re.MULTILINE)


def test_install_creates_secrets_and_runs(root: Path, deb: Path) -> None:
    host_etc_existed = Path("/etc", PACKAGE).exists()
    dpkg(root, "--install", deb)
    assert Path("/etc", PACKAGE).exists() == host_etc_existed  # nothing outside the root

    etc = root / "etc" / PACKAGE
    secrets = {}
    for name in SECRETS:
        status = (etc / name).stat()
        assert (status.st_mode & 0o777, status.st_uid, status.st_gid) == (0o600, 0, 0), name
        secrets[name] = (etc / name).read_text()
        assert re.fullmatch(r"[A-Za-z0-9+/]{64}\n", secrets[name]), name
    assert len(set(secrets.values())) == len(SECRETS)
    assert not (etc / "ldap_password").exists()
    assert not list(etc.glob(".*"))  # no temporary file left

    config = (etc / "config.toml").read_text()
    # The secrets come in as credentials: no key names their files.
    assert not re.search(r'^\w+_file = "/etc/jitsi-auth-sidecar/', config, flags=re.MULTILINE)

    version = sidecar(root, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"{PACKAGE} 0.1.0"
    # The service account's password is the admin's to write: named until then.
    unconfigured = sidecar(root, "check-config", "--offline", "--config", str(etc / "config.toml"))
    assert unconfigured.returncode == 2
    assert "ldap.bind_password_file: missing" in unconfigured.stderr
    (etc / "ldap_password").write_text("service account password")
    (etc / "ldap_password").chmod(0o600)
    checked = sidecar(
        root, "check-config", "--offline", "--quiet", "--config", str(etc / "config.toml")
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("configuration ok")
    assert list((root / "opt" / PACKAGE / "lib").rglob("__pycache__/*.pyc"))


def test_upgrade_keeps_the_admins_files(root: Path, upgrade: Path) -> None:
    etc = root / "etc" / PACKAGE
    config = etc / "config.toml"
    config.write_text(
        config.read_text().replace(
            'urls = ["ldaps://ldap.example.org"]', 'urls = ["ldaps://dir.school.example"]'
        )
    )
    (etc / "app_secret").write_text("the secret Prosody has had for years, 32+ bytes long\n")
    snippet = root / "etc" / "nginx" / "snippets" / f"{PACKAGE}.conf"
    snippet.write_text(snippet.read_text() + "# the admin's line\n")
    before = {path: path.read_bytes() for path in (*etc.iterdir(), snippet)}

    dpkg(root, "--install", upgrade)

    assert run(
        "dpkg-query", f"--admindir={root}/var/lib/dpkg", "--show", PACKAGE
    ).stdout.split() == [PACKAGE, field(upgrade, "Version")]
    assert {path: path.read_bytes() for path in (*etc.iterdir(), snippet)} == before
    assert (etc / "app_secret").stat().st_mode & 0o777 == 0o600
    assert sidecar(root, "--version").returncode == 0


def test_remove_keeps_configuration_and_purge_deletes_it(root: Path) -> None:
    etc = root / "etc" / PACKAGE
    kept = {path: path.read_bytes() for path in etc.iterdir()}
    dpkg(root, "--remove", PACKAGE)
    assert not (root / "opt" / PACKAGE).exists()  # byte code included
    assert not (root / "lib" / "systemd" / "system" / f"{PACKAGE}.socket").exists()
    assert {path: path.read_bytes() for path in etc.iterdir()} == kept

    dpkg(root, "--purge", PACKAGE)
    assert not etc.exists()
    assert not (root / "etc" / "nginx" / "snippets" / f"{PACKAGE}.conf").exists()


def test_lintian_reports_no_error(lintian: subprocess.Popen[str]) -> None:
    output, _ = lintian.communicate(timeout=600)
    errors = [line for line in output.splitlines() if line.startswith("E:")]
    assert not errors, output
    assert lintian.returncode == 0, output


@pytest.mark.parametrize("name", SECRETS)
def test_postinst_never_replaces_a_secret(deb: Path, tmp_path: Path, name: str) -> None:
    """A secret that is there stays as it is, content and mode; the others are created."""
    tree = tmp_path / "tree"
    run("dpkg-deb", "--control", deb, tree)
    etc = tmp_path / "etc" / PACKAGE
    etc.mkdir(parents=True)
    (etc / name).write_text("kept\n")
    (etc / name).chmod(0o640)
    result = subprocess.run(
        ["sh", str(tree / "postinst"), "configure", ""],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "DPKG_ROOT": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert (etc / name).read_text() == "kept\n"
    assert (etc / name).stat().st_mode & 0o777 == 0o640
    assert sorted(path.name for path in etc.iterdir()) == sorted(SECRETS)
