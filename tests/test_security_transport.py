"""https is required for the base URL except on loopback, and TLS verification is never turned off: a server whose
certificate is not trusted fails the run (even with the environment variables that disable verification in other
tools), and the same server works once its CA is given through REQUESTS_CA_BUNDLE."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from sync_support import TODAY, loaded_keys

from illuminate_sync.pipelines.cli import main
from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator.server import Handler

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tls_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, str, Path]]:
    """The simulator served over https on 127.0.0.1 with a self-signed certificate: (sim, base URL, cert file)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    sim = Simulator(SimulatorConfig(students=20, seed=21, today=TODAY))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.sim = sim  # type: ignore[attr-defined]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    sim.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield sim, f"https://127.0.0.1:{sim.port}/live", cert
    server.shutdown()
    server.server_close()


def oauth2_env(sim: Simulator, base_url: str) -> dict[str, str]:
    client_id, client_secret = sim.oauth2
    return {
        "SOURCES__ILLUMINATE__BASE_URL": base_url,
        "SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_ID": client_id,
        "SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_SECRET": client_secret,
        "SOURCES__ILLUMINATE__TODAY": sim.today.isoformat(),
        "SOURCES__ILLUMINATE__ACADEMIC_YEARS_BACK": "0",
    }


def cli(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    for name in [name for name in os.environ if name.startswith("SOURCES__ILLUMINATE__")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_an_untrusted_certificate_fails_the_run_even_when_the_environment_says_do_not_verify(
    tls_simulator: tuple[Simulator, str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim, base_url, _ = tls_simulator
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    env = {**oauth2_env(sim, base_url), "CURL_CA_BUNDLE": "", "PYTHONHTTPSVERIFY": "0"}
    code, output = cli(["run", "--duckdb", str(tmp_path / "w.duckdb"), "--resources", "sites", "--skip-models"], env,
                       monkeypatch, capsys)  # fmt: skip
    assert code == 1
    (line,) = [line for line in output.splitlines() if line.startswith("illuminate-sync: error:")]
    assert "certificate" in line and "could not be verified" in line, line
    assert "REQUESTS_CA_BUNDLE" in line  # the fix, named


def test_the_same_server_works_with_its_ca_bundle(
    tls_simulator: tuple[Simulator, str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim, base_url, cert = tls_simulator
    env = {**oauth2_env(sim, base_url), "REQUESTS_CA_BUNDLE": str(cert)}
    code, output = cli(["run", "--duckdb", str(tmp_path / "w.duckdb"), "--resources", "sites", "--skip-models"], env,
                       monkeypatch, capsys)  # fmt: skip
    assert code == 0, output
    assert len(loaded_keys(tmp_path / "w.duckdb", "sites")) == len(sim.query("Sites"))


@pytest.mark.parametrize("host", ["district.illuminateed.com", "10.0.0.5", "127.0.0.1.nip.io"])
def test_plain_http_is_refused_for_any_host_but_loopback(
    host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "SOURCES__ILLUMINATE__BASE_URL": f"http://{host}/live",
        "SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_ID": "id",
        "SOURCES__ILLUMINATE__CREDENTIALS__CLIENT_SECRET": "secret",
    }
    code, output = cli(["run", "--duckdb", str(tmp_path / "w.duckdb"), "--skip-models"], env, monkeypatch, capsys)
    assert code == 1
    (line,) = [line for line in output.splitlines() if line.startswith("illuminate-sync: error:")]
    assert "SOURCES__ILLUMINATE__BASE_URL" in line and "https" in line, line


def test_no_code_path_turns_tls_verification_off() -> None:
    """Nothing in the sync's source disables verification (verify=False, CERT_NONE, unverified contexts)."""
    pattern = re.compile(
        r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|_create_unverified_context|disable_warnings"
        r"|InsecureRequestWarning|PYTHONHTTPSVERIFY"
    )
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("sources", "pipelines")
        for path in (ROOT / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, offenders
