"""`serve_forever` prints the environment to paste into a shell, serves, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

# A test run started in the background of a script without job control inherits an ignored SIGINT, and Python then
# raises no KeyboardInterrupt: the child takes Ctrl-C's handler back, as it has in a terminal.
SCRIPT = (
    "import datetime, signal\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from simulator.server import SimulatorConfig, serve_forever\n"
    "serve_forever(SimulatorConfig(students=30, seed=2, today=datetime.date(2026, 11, 27)), 0)\n"
)


def test_serve_forever_prints_env_lines_serves_and_exits_cleanly_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(7)]
        env = dict(line.split("=", 1) for line in lines)
        assert set(env) >= {"SOURCES__ILLUMINATE__BASE_URL", "SOURCES__ILLUMINATE__CREDENTIALS__CONSUMER_KEY"}
        base = env["SOURCES__ILLUMINATE__BASE_URL"]
        assert base.startswith("http://127.0.0.1:") and base.endswith("/live")
        port = base.split(":")[2].split("/")[0]
        assert requests.get(f"http://127.0.0.1:{port}/_control/requests", timeout=10).json() == {}
    finally:
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "Traceback" not in err
