"""Black-box tests: the built `handrail` binary, started as a user starts it.

script/test builds the binary and exports HANDRAIL_TEST_DATABASE_URL (a throwaway
PostgreSQL); these tests fail loudly without it.
"""
import os
import pathlib
import signal
import socket
import subprocess
import time
import uuid

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = ROOT / ".build" / "debug" / "handrail"


def admin_url():
    url = os.environ.get("HANDRAIL_TEST_DATABASE_URL")
    if not url:
        pytest.fail("HANDRAIL_TEST_DATABASE_URL is not set: run the black-box suite with script/test")
    return url


def psql(conninfo, sql):
    out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def empty_database():
    """A new, empty database; yields its connection string, drops it afterwards."""
    name = "handrail_e2e_" + uuid.uuid4().hex
    psql(admin_url(), f"CREATE DATABASE {name}")
    yield f"{admin_url()} dbname={name}"
    psql(admin_url(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Server:
    """One `handrail serve` process."""

    def __init__(self, env, port, args=()):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        full_env.update(env)
        full_env["HANDRAIL_LISTEN"] = f"127.0.0.1:{port}"
        self.process = subprocess.Popen([str(BINARY), "serve", *args], env=full_env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"handrail exited with {self.process.returncode}: {self.process.stderr.read()}")
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError("handrail did not become ready in time")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("handrail did not stop after the signal")
        return self.process.returncode, self.process.stdout.read(), self.process.stderr.read()


@pytest.fixture
def start_server():
    servers = []

    def start(env, args=()):
        server = Server(env, free_port(), args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
