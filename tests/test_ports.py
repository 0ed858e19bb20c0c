"""The ports the tests, the benchmark and the soak give their servers."""

from __future__ import annotations

import socket

import pytest

from demo import ports
from demo.ports import free_port, free_ports, quiet_ports


def test_free_ports_lie_outside_the_ephemeral_range() -> None:
    low, high = (int(bound) for bound in ports.EPHEMERAL_RANGE.read_text().split())
    for port in free_ports(50):
        assert not low <= port <= high
        assert port >= 1024


def test_free_ports_differ_from_one_call_to_the_next() -> None:
    handed_out = free_ports(200)
    assert len(set(handed_out)) == len(handed_out)


def test_a_port_somebody_listens_on_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        held = holder.getsockname()[1]
        monkeypatch.setattr(ports, "_ports", iter([held, held, 1 + held]))
        assert free_port() != held


@pytest.mark.parametrize("count", [2, 3, 8])
def test_parallel_workers_take_from_shares_that_do_not_overlap(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(count))
    shares = []
    for index in range(count):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{index}")
        shares.append(set(ports._own_share(quiet_ports())))
    assert all(len(share) >= len(quiet_ports()) // count for share in shares)
    assert len(set().union(*shares)) == sum(len(share) for share in shares)


def test_outside_a_parallel_run_the_whole_quiet_range_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert ports._own_share(quiet_ports()) == quiet_ports()


def test_a_machine_whose_ephemeral_range_starts_low_uses_the_ports_above_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ports, "_ephemeral_range", lambda: (1024, 49151))
    assert quiet_ports().start == 49152
    monkeypatch.setattr(ports, "_ephemeral_range", lambda: (1024, 65535))
    assert not quiet_ports()
