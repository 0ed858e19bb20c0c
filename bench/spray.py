"""``python -m bench.spray``: the daemon's resident memory while made-up names
from ever new IPv6 /64s try to log in through nginx, as an attacker holding a
prefix would send them.

slapd with the demo school, the sidecar with the demo configuration (the
default ban limits), and nginx with the include; nginx takes the client
address from ``X-Forwarded-For`` (``set_real_ip_from 127.0.0.1``, as behind a
load balancer), so every request comes from a /64 of its own. Each one is a
Basic login of a name the directory does not have: a search, a 401, and a
failure counted against the name, the pair and the /64. Prints the sidecar's
resident memory every ``--every`` names.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from demo.nginx import Nginx
from demo.ports import free_port
from demo.run import write_demo_config
from demo.slapd import Slapd
from testbed.stack import SidecarProcess, XmppStandIn

REAL_IP_FROM_FORWARDED = "set_real_ip_from 127.0.0.1;\nreal_ip_header X-Forwarded-For;\n"


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def place(number: int) -> str:
    """A /64 of its own for each number."""
    return f"2001:db8:{number >> 16:x}:{number & 0xFFFF:x}::1"


async def spray(port: int, pid: int, names: int, every: int, concurrency: int) -> None:
    statuses: Counter[int] = Counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(names):
        queue.put_nowait(number)
    url = f"http://127.0.0.1:{port}/Mathe7b"
    started = time.monotonic()

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            number = queue.get_nowait()
            credentials = base64.b64encode(f"nobody-{number}:guess".encode()).decode()
            headers = {"Authorization": f"Basic {credentials}", "X-Forwarded-For": place(number)}
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                statuses[response.status] += 1
            if number % every == every - 1:
                print(
                    f"{number + 1:>7} names  {resident_mb(pid):6.1f} MB  "
                    f"{time.monotonic() - started:5.0f} s  {dict(statuses)}",
                    flush=True,
                )

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    print(f"answers: {dict(statuses)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=200_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spray-") as directory:
        workdir = Path(directory)
        with Slapd(workdir / "slapd") as slapd:
            port = free_port()
            config = write_demo_config(workdir, port=port, ldap_url=slapd.ldap_url)
            sidecar = SidecarProcess(config, workdir / "sidecar.sock", workdir / "sidecar.log")
            xmpp = XmppStandIn(workdir)
            xmpp.start()
            nginx = Nginx(
                workdir / "nginx",
                port=port,
                sidecar_socket=sidecar.socket_path,
                xmpp_port=xmpp.port,
                http_extra=REAL_IP_FROM_FORWARDED,
            )
            (workdir / "nginx").mkdir()
            try:
                sidecar.start()
                nginx.start()
                assert sidecar.process is not None
                pid = sidecar.process.pid
                print(f"      0 names  {resident_mb(pid):6.1f} MB (started)", flush=True)
                asyncio.run(spray(port, pid, args.names, args.every, args.concurrency))
                time.sleep(5)
                print(f"{args.names:>7} names  {resident_mb(pid):6.1f} MB (5 s after)")
                log = sidecar.log()
                print("place seen by the sidecar:", "address=2001:db8:" in log)
            finally:
                nginx.stop()
                sidecar.stop()
                xmpp.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
