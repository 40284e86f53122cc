"""`emulate --client`: a server and its client in one run and one clock, with a small streaming
HTTP server (tests/e2e/workloads/toy_http_server.py) so that every case takes seconds. The
cases: the normal run (the client starts once the server answers, the server is stopped when the
client exits, the status is the client's), a client that connects before its server listens, a
server that dies mid-benchmark, a server that fails at start-up or never becomes ready, a client
that is killed: each run ends by itself with the cause named."""

from __future__ import annotations

import json
import re
import shlex
import socket
import sys

import pytest
from timewarp_testing import REPO, EmulatedRun

from emulator.outputs.records import load_run
from emulator.outputs.serving import server_requests

WORKLOADS = REPO / "tests" / "e2e" / "workloads"
SERVER = [sys.executable, str(WORKLOADS / "toy_http_server.py")]
CLIENT = [sys.executable, str(WORKLOADS / "toy_http_client.py")]
REQUEST_LINE = re.compile(r"^REQ (\S+) (\S+) (\S+) (\d+)$", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_args(port: int, *extra: str) -> list[str]:
    return ["--client", shlex.join([*CLIENT, str(port), *extra]), "--client-port", str(port)]


def run_json(run: EmulatedRun) -> dict:
    return json.loads((run.run_dir / "run.json").read_text())


def requests_of(run: EmulatedRun) -> list[tuple[float, float, float, int]]:
    return [(float(a), float(b), float(c), int(d)) for a, b, c, d in REQUEST_LINE.findall(run.stdout)]


def test_client_runs_once_the_server_answers_and_ends_the_run(emulate) -> None:  # noqa: ANN001
    port = free_port()
    # 2 virtual seconds of start-up before the port is bound; 8 tokens, 10 ms apart, per request
    run = emulate([*SERVER, str(port), "--listen-after", "2", "--tokens", "8", "--step", "0.01"],
                  extra=client_args(port, "--requests", "4", "--gap", "0.1"), timeout=120)
    assert run.exit_status == 0, run.stderr[-3000:]
    requests = requests_of(run)
    assert len(requests) == 4 and "RESULT ok=4 failed=0" in run.stdout, run.stdout
    for _start, ttft, e2e, chunks in requests:
        assert chunks == 8
        # the first token after one 10 ms step, the last after eight: virtual time, plus the
        # processes' real CPU time (generous: a loaded host deschedules them)
        assert 0.010 <= ttft < e2e and 0.080 <= e2e < 0.5, (ttft, e2e)
    assert "stopped cleanly after 4 requests" in run.stdout   # SIGTERM, the server's clean shutdown
    # the client's requests are in the run's records: its command, and each request line's time
    client_proc = next(p for p in load_run(run.run_dir).processes if "toy_http_client.py" in p.command)
    sent = client_proc.http_requests()
    assert [what for _, what in sent] == ["POST /generate"] * 4, sent
    # request i's line is written after its start and before its first token: relative to
    # request 0, the gap between marks differs from the gap between starts by less than the TTFTs
    for (start, ttft, _e2e, _chunks), (at_ns, _) in zip(requests, sent, strict=True):
        drift = (at_ns - sent[0][0]) / 1e9 - (start - requests[0][0])
        assert -requests[0][1] < drift < ttft, (drift, requests)
    # and as the server saw them: each read after it was sent, 8 events written, the first after
    # one 10 ms step and before the client read it, the last before the client's end
    served = server_requests(load_run(run.run_dir))
    posts = served[served["path"] == "POST /generate"].reset_index()
    assert len(posts) == 4 and (posts["status"] == "200").all() and (posts["chunks"] == 8).all(), served
    for (_start, ttft, e2e, _chunks), (at_ns, _), row in zip(requests, sent, posts.itertuples(), strict=True):
        assert row.arrived_s >= at_ns / 1e9
        assert 0.010 <= row.first_chunk_s - row.arrived_s <= ttft, (row, ttft)
        assert 0.080 <= row.last_chunk_s - row.arrived_s <= e2e, (row, e2e)
    client = run_json(run)["client"]
    assert client["exit_status"] == 0 and client["server_exit_status"] == 0 and client["ready_after_wall_s"] >= 0
    assert run.summary["ended_by"] is None and run.summary["client"]["port"] == port


def test_client_status_is_the_runs(emulate) -> None:  # noqa: ANN001
    port = free_port()
    run = emulate([*SERVER, str(port)], extra=["--client", "sh -c 'exit 7'", "--client-port", str(port)],
                  timeout=120)
    assert run.exit_status == 7, run.stderr[-3000:]
    assert "stopped cleanly" in run.stdout


def test_client_connecting_before_the_server_listens(emulate) -> None:  # noqa: ANN001
    """A script starts the client first: its connections are refused until the server, 3 virtual
    seconds into its start-up, listens; it retries in virtual time and every request succeeds."""
    port = free_port()
    script = (f"{shlex.join([*SERVER, str(port), '--listen-after', '3'])} & "
              f"{shlex.join([*CLIENT, str(port), '--requests', '3', '--connect-retries', '100'])}; "
              "status=$?; kill %1; wait; exit $status")
    run = emulate(["bash", "-c", script], timeout=120)
    assert run.exit_status == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "RESULT ok=3 failed=0" in run.stdout


def test_server_dying_mid_benchmark_ends_the_run_with_the_cause(emulate) -> None:  # noqa: ANN001
    port = free_port()
    run = emulate([*SERVER, str(port), "--die-after-requests", "2"],
                  extra=client_args(port, "--requests", "6"), timeout=120)
    assert run.exit_status != 0
    ended_by = run.summary["ended_by"]
    assert ended_by["reason"] == "server-exited" and "signal 9" in ended_by["cause"], ended_by
    assert "the run was ended early: the server exited (signal 9) while the client ran" in run.stderr
    assert len(requests_of(run)) == 2


def test_server_failing_at_start_up_names_the_cause(emulate) -> None:  # noqa: ANN001
    port = free_port()
    run = emulate([*SERVER, str(port), "--exit-status", "3"], extra=client_args(port), timeout=120)
    assert run.exit_status == 3
    assert "before port" in run.summary["ended_by"]["cause"] and "the client was not started" in run.stderr
    assert run_json(run)["client"]["pid"] is None


def test_server_never_ready_is_stopped_at_the_ready_timeout(emulate) -> None:  # noqa: ANN001
    port = free_port()
    # busy start-up that never binds the port: no sleep, so the clock cannot jump past it
    run = emulate([sys.executable, "-c", "while True: pass"],
                  extra=[*client_args(port), "--client-ready-timeout", "2"], timeout=120)
    assert run.exit_status == 1
    assert run.summary["ended_by"]["reason"] == "server-not-ready", run.summary["ended_by"]
    assert f"did not answer on port {port}" in run.stderr


def test_killed_client_stops_the_server(emulate) -> None:  # noqa: ANN001
    port = free_port()
    run = emulate([*SERVER, str(port)], extra=["--client", "sh -c 'kill -KILL $$'", "--client-port", str(port)],
                  timeout=120)
    assert run.exit_status == 128 + 9, run.stderr[-3000:]
    assert "was killed by SIGKILL; stopping the server" in run.stderr
    assert "stopped cleanly" in run.stdout
    assert run_json(run)["client"]["exit_signal"] == 9


@pytest.mark.parametrize("argv, message", [
    (["--client", "true"], "--client needs --client-port"),
    (["--client-port", "8000"], "--client-port needs --client"),
])
def test_client_option_errors_are_one_line(emulate, argv: list[str], message: str) -> None:  # noqa: ANN001
    run = emulate(["true"], extra=argv, timeout=60)
    assert run.exit_status == 2 and message in run.stderr and "Traceback" not in run.stderr
