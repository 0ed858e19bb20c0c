"""A connection given up while it opens never takes the daemon down.

bonsai makes libldap's handle in a thread of its own and takes it only when
the open is next looked at; an open given up before then (a login's deadline,
a hedged attempt beaten by another, a request cancelled) once reached libldap's
ldap_abandon_ext with a NULL handle: a segfault, the whole daemon gone. The
opens run in a child process, so that a crash is an exit status here and not
the end of the test run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from demo.slapd import Slapd

REPOSITORY = Path(__file__).resolve().parents[1]

# Opens cancelled one, two or three turns of the loop after they started:
# before bonsai's thread has made the handle, just after, and once the bind
# is on its way.
GIVE_UP_OPENS = """
import asyncio, gc, os, sys
from sidecar.config.settings import LdapSettings
from sidecar.ldap.directory import ldap_client

url, count = sys.argv[1], int(sys.argv[2])

def descriptors():
    return len(os.listdir("/proc/self/fd"))

async def main():
    settings = LdapSettings(urls=(url,), user_base="ou=people,dc=school,dc=example")
    before = descriptors()
    for number in range(count):
        client = ldap_client(settings, url, None, None)

        async def opened():
            # As the directory opens one: the open starts, and is waited for, in one step.
            return await client.connect(is_async=True, timeout=5)

        task = asyncio.ensure_future(opened())
        for _ in range(1 + number % 3):
            await asyncio.sleep(0)
        task.cancel()
        try:
            (await task).close()
        except (asyncio.CancelledError, Exception):
            pass
    # Opens given up too early are looked at until they can be abandoned. The
    # cancelled tasks' errors hold their frames in cycles, as any cancelled
    # task's do: the collector's to end.
    for _ in range(200):
        gc.collect()
        if descriptors() <= before:
            break
        await asyncio.sleep(0.05)
    print(before, descriptors())

asyncio.run(main())
"""


def test_opens_given_up_at_any_moment_neither_crash_nor_leave_a_socket(slapd: Slapd) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", GIVE_UP_OPENS, slapd.ldap_url, "300"],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, (finished.returncode, finished.stderr[-2000:])
    before, after = (int(number) for number in finished.stdout.split())
    assert after <= before
