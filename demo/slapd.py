"""A real, throwaway slapd holding the demo school.

Debian's ``slapd`` runs in the foreground as a child process, configured by a
``slapd.conf`` in its working directory, listening on two loopback ports:
plain LDAP and LDAPS with a certificate from a CA made here. The first start
seeds the school through ``ldapadd`` (online, so that the ``memberof``
overlay fills in ``memberOf``); later starts reuse the database. The ports
are picked once, so a stop and a start keep the same URLs.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from demo.ports import free_ports
from demo.processes import terminate
from demo.school import SCHOOL, School, ssha512

SLAPD = "/usr/sbin/slapd"
LDAPADD = "/usr/bin/ldapadd"
LDAPWHOAMI = "/usr/bin/ldapwhoami"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
# What slapd writes to its log: "-d 0" would be silent even about a port in
# use; "stats" adds a line per connection and operation (binds, searches).
DEBUG = "stats"
POLL_INTERVAL = 0.05
LOG_TAIL = 3000

CONFIG = """\
# Written by demo.slapd; rewritten on every start.
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema

modulepath {modules}
moduleload back_mdb
moduleload memberof
moduleload pw-sha2

pidfile {workdir}/slapd.pid
TLSCACertificateFile {ca_file}
TLSCertificateFile {cert_file}
TLSCertificateKeyFile {key_file}

database mdb
suffix "{base_dn}"
rootdn "{admin_dn}"
rootpw {admin_hash}
directory {data}
maxsize 67108864
index objectClass eq
index uid,memberUid eq
index member eq

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
# Deleting a person also drops them from their groups.
memberof-refint TRUE

# Hashes are for binding, and for their owner to replace; nobody reads them.
access to attrs=userPassword
    by self =xw
    by anonymous auth
    by * none

access to dn.subtree="{people_dn}"
    by dn.exact="{service_dn}" read
    by users read
    by * none

access to dn.subtree="{groups_dn}"
    by dn.exact="{service_dn}" read
    by users read
    by * none

# The base and the service account: nothing to read. Anonymous searches get
# noSuchObject, not even a hint of what is there.
access to *
    by self read
    by * none
"""


class SlapdError(RuntimeError):
    """slapd did not come up, or the school could not be put into it."""


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.write_bytes(data)


def write_tls_files(*, ca_file: Path, cert_file: Path, key_file: Path) -> None:
    """A new CA (``ca_file``), and a server certificate from it for ``127.0.0.1`` and ``localhost``.

    Only the server's key is kept; the CA's key is thrown away once it has signed.
    """
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Demo School LDAP CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    for path in (ca_file, cert_file, key_file):
        path.parent.mkdir(parents=True, exist_ok=True)
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        key_file,
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


class Slapd:
    """slapd in ``workdir`` on ``ldap_url`` and ``ldaps_url``, holding ``school``.

    ``start()`` returns once slapd answers a bind; ``stop()`` leaves nothing
    running. Also a context manager.
    """

    def __init__(self, workdir: Path, *, school: School = SCHOOL) -> None:
        self.workdir = workdir
        self.school = school
        self.port, self.tls_port = free_ports(2)
        self.admin_dn = f"cn=admin,{school.base_dn}"
        self.admin_password = secrets.token_urlsafe(24)
        self.config = workdir / "slapd.conf"
        self.data = workdir / "data"
        self.log_file = workdir / "slapd.log"
        self.ca_file = workdir / "tls" / "ca.pem"
        self.cert_file = workdir / "tls" / "server.pem"
        self.key_file = workdir / "tls" / "server.key"
        self._admin_password_file = workdir / "admin.password"
        self._seeded = workdir / "seeded"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def ldap_url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        try:
            return self.log_file.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(mode=0o700, exist_ok=True)
        if not (self.ca_file.exists() and self.cert_file.exists() and self.key_file.exists()):
            write_tls_files(ca_file=self.ca_file, cert_file=self.cert_file, key_file=self.key_file)
        # ldapadd/ldapwhoami read it with -y, which keeps it off the command line.
        _write_private(self._admin_password_file, self.admin_password.encode("utf-8"))
        school = self.school
        text = CONFIG.format(
            schema=SCHEMA_DIR,
            modules=MODULE_DIR,
            workdir=self.workdir,
            ca_file=self.ca_file,
            cert_file=self.cert_file,
            key_file=self.key_file,
            base_dn=school.base_dn,
            admin_dn=self.admin_dn,
            admin_hash=ssha512(self.admin_password),
            data=self.data,
            people_dn=school.people_dn,
            groups_dn=school.groups_dn,
            service_dn=school.service_dn,
        )
        _write_private(self.config, text.encode("utf-8"))

    def start(self, timeout: float = 15.0) -> None:
        """Start slapd (seeding the school the first time) and wait until it answers."""
        if self.running:
            return
        self.write_config()
        listen = f"{self.ldap_url}/ {self.ldaps_url}/"
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [SLAPD, "-d", DEBUG, "-h", listen, "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        try:
            self._wait_until_answering(self._process, timeout)
            if not self._seeded.exists():
                self._seed()
                self._seeded.touch()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        terminate(process, timeout)

    def __enter__(self) -> Slapd:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _failure(self, message: str) -> SlapdError:
        return SlapdError(f"{message}; end of {self.log_file}:\n{self.log()[-LOG_TAIL:]}")

    def _client_env(self) -> dict[str, str]:
        # LDAPNOINIT: ignore ldap.conf and ~/.ldaprc, whatever this machine has in them.
        return {**os.environ, "LDAPNOINIT": "1"}

    def _run_client(self, command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        as_admin = ["-x", "-D", self.admin_dn, "-y", str(self._admin_password_file)]
        network = ["-H", self.ldap_url, "-o", f"nettimeout={max(1, int(timeout))}"]
        return subprocess.run(
            [*command, *as_admin, *network],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._client_env(),
            check=False,
        )

    def _listening(self) -> bool:
        # Only the plain port: a bare TCP probe of the TLS port makes slapd log
        # a TLS error, and slapd opens all its listeners before serving any.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _wait_until_answering(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            code = process.poll()
            if code is not None:
                raise self._failure(f"slapd exited with status {code}")
            if self._listening():
                try:
                    whoami = self._run_client([LDAPWHOAMI], timeout=2.0)
                except subprocess.TimeoutExpired:
                    pass
                else:
                    if whoami.returncode == 0:
                        return
            if time.monotonic() >= deadline:
                raise self._failure(f"slapd did not answer on {self.ldap_url} within {timeout}s")
            time.sleep(POLL_INTERVAL)

    def _seed(self) -> None:
        seed_file = self.workdir / "seed.ldif"
        _write_private(seed_file, self.school.seed_ldif().encode("utf-8"))
        result = self._run_client([LDAPADD, "-f", str(seed_file)], timeout=30.0)
        if result.returncode != 0:
            raise self._failure(
                f"ldapadd of the school failed ({result.returncode}): "
                f"{result.stderr.strip()} {result.stdout.strip()[-LOG_TAIL:]}"
            )
