"""Black-box tests: the built `handrail` binary, started as a user starts it.

script/test builds the binary and exports HANDRAIL_TEST_DATABASE_URL (a throwaway
PostgreSQL); these tests fail loudly without it.
"""
import os
import pathlib
import signal
import shutil
import socket
import subprocess
import tempfile
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
        # Files, not pipes: a busy server's log would fill a pipe nobody reads and block it.
        self.stdout = tempfile.TemporaryFile("w+")
        self.stderr = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen([str(BINARY), "serve", *args], env=full_env,
                                        stdout=self.stdout, stderr=self.stderr, text=True)

    def output(self):
        """Everything the server wrote so far: (stdout, stderr)."""
        texts = []
        for f in (self.stdout, self.stderr):
            f.flush()
            f.seek(0)
            texts.append(f.read())
        return texts

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"handrail exited with {self.process.returncode}: {self.output()[1]}")
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
        out, err = self.output()
        return self.process.returncode, out, err


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


def cli(args, database, stdin=None, extra_env=None):
    """Runs the built `handrail` with DATABASE_URL set, as an operator would."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"DATABASE_URL": database, "HANDRAIL_BCRYPT_COST": "4", **(extra_env or {})})
    return subprocess.run([str(BINARY), *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)


def wait_for(predicate, timeout=30, interval=0.25, what="the condition"):
    """Polls until predicate() returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


class Alertmanager:
    """Debian's prometheus-alertmanager, alone (no cluster), with a config of the test's."""

    def __init__(self, tmp_path, config):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (tmp_path / "alertmanager.yml").write_text(config)
        self.log = open(tmp_path / "alertmanager.log", "w")
        self.process = subprocess.Popen(
            ["prometheus-alertmanager", f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=debug"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._ready, timeout=30, what="alertmanager to start")

    def _ready(self):
        if self.process.poll() is not None:
            raise AssertionError(f"alertmanager exited with {self.process.returncode}")
        try:
            return requests.get(self.url + "/-/ready", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def amtool(self, *args):
        out = subprocess.run(["amtool", f"--alertmanager.url={self.url}", *args], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def alertmanager(tmp_path):
    started = []

    def start(config):
        am = Alertmanager(tmp_path, config)
        started.append(am)
        return am

    yield start
    for am in started:
        am.stop()


class PrivateCluster:
    """A PostgreSQL cluster of the test's own, to stop and start under a running server.
    initdb refuses root, so as root the cluster belongs to the postgres user."""

    def __init__(self):
        # Directly under /tmp: pytest's own temporary folders are private to root, and the
        # socket path must stay short.
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="hr-pg-"))
        self.data = self.dir / "data"
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            subprocess.run(["chown", "postgres", str(self.dir)], check=True)
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.conninfo = f"host={self.dir} user=postgres dbname=postgres"
        self.start()

    def run(self, *args):
        out = subprocess.run([*self.as_owner, *args], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def start(self):
        self.run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.dir / "log"), "-o",
                 f"-k {self.dir} -c listen_addresses='' -c fsync=off", "start")

    def stop(self):
        self.run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")


@pytest.fixture
def private_cluster():
    cluster = PrivateCluster()
    yield cluster
    subprocess.run([*cluster.as_owner, "pg_ctl", "-D", str(cluster.data), "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(cluster.dir, ignore_errors=True)


class Mailbox:
    """A local SMTP server (aiosmtpd) on loopback, and a sendmail for Handrail: Debian's msmtp,
    configured to deliver there. `messages` holds what arrived, parsed."""

    def __init__(self, tmp_path):
        import email
        import email.policy
        import stat

        from aiosmtpd.controller import Controller

        self.messages = []
        self.recipients = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                mailbox.recipients.append(envelope.rcpt_tos)
                mailbox.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        self.smtp = Controller(Handler(), hostname="127.0.0.1", port=free_port())
        self.smtp.start()
        rc = tmp_path / "msmtprc"
        rc.write_text(f"account default\nhost 127.0.0.1\nport {self.smtp.port}\nfrom handrail@example.test\nauth off\ntls off\n")
        rc.chmod(stat.S_IRUSR | stat.S_IWUSR)  # msmtp refuses a configuration others can read
        self.sendmail = tmp_path / "sendmail"
        self.sendmail.write_text(f'#!/bin/sh\nexec msmtp -C "{rc}" "$@"\n')
        self.sendmail.chmod(0o755)

    def stop(self):
        self.smtp.stop()


@pytest.fixture
def mailbox(tmp_path):
    box = Mailbox(tmp_path)
    yield box
    box.stop()
