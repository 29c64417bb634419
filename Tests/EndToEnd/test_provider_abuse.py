"""Peers that misbehave and inputs meant to break the daemon: each gets a prompt, clear error,
the daemon keeps serving, and nothing made is left behind (regressions from the bad-input
review of issue 4)."""
import contextlib
import json
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import drop_job_roles, role_toml

CREATE_ROLE = "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"
ROLES = {
    "fake.toml": role_toml("fake", ["uid:0"], {"name": "s3", "secret": "aws-fake", "type": "aws-assume-role",
                                              "role_arn": "arn:aws:iam::123456789012:role/x"}),
    "jwtonly.toml": role_toml("jwtonly", ["uid:0"], {"secret": "signer", "type": "jwt", "audience": "a"}),
    "stalled.toml": role_toml("stalled", ["uid:0"], {"secret": "pg-stalled", "type": "postgres-role",
                                                    "create": [CREATE_ROLE, "GRANT USAGE ON SCHEMA ml TO \"{{name}}\""]}),
    "slow.toml": role_toml("slow", ["uid:0"], {"secret": "pg", "type": "postgres-role",
                                              "create": [CREATE_ROLE, "SELECT pg_sleep(3)"]}),
}


class FakeSTS:
    """An HTTP server on loopback answering every POST with `behaviour`."""

    def __init__(self, behaviour):
        handler_behaviour = behaviour

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                handler_behaviour(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def answer_credentials(expiration):
    body = ("<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAFAKEFAKEFAKE0000</AccessKeyId>"
            "<SecretAccessKey>fakeSecretFakeSecret</SecretAccessKey><SessionToken>fakeToken</SessionToken>"
            f"<Expiration>{expiration}</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>").encode()

    def behaviour(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return behaviour


def trickle(handler):
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    try:
        for _ in range(40):
            handler.wfile.write(b"<")
            handler.wfile.flush()
            time.sleep(1)
    except OSError:
        pass


class StallingProxy:
    """A TCP proxy to PostgreSQL that stops forwarding (without closing) once the client sends
    `marker`: a server that stops answering mid-session."""

    def __init__(self, port, marker):
        self.target = port
        self.marker = marker
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, upstream]
            stalled = threading.Event()
            threading.Thread(target=self._pipe, args=(client, upstream, stalled, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, stalled, False), daemon=True).start()

    def _pipe(self, source, target, stalled, watch):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    return
                if watch and self.marker in data:
                    stalled.set()
                if stalled.is_set():
                    continue  # swallow: the peer never hears of it
                target.sendall(data)
        except OSError:
            return

    def close(self):
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)  # close() alone would not end a socket another thread reads
                s.close()
            except OSError:
                pass


@pytest.fixture
def broker(broker_factory, postgres, moto):
    d = broker_factory(ROLES)
    d.cli("secret", "generate", "signer", "--type", "jwt-signer", check=0)
    d.cli("secret", "put", "pg", "--type", "postgres", input=json.dumps(postgres.secret_fields()), check=0)
    yield d
    d.stop()
    drop_job_roles(postgres)


def put_fake_sts(d, url):
    fields = {"access_key_id": "AKIAFAKEFAKEFAKE0000", "secret_access_key": "fake-broker-secret", "endpoint_url": url}
    return d.cli("secret", "put", "aws-fake", "--type", "aws", input=json.dumps(fields))


@contextlib.contextmanager
def fake_sts(d, behaviour):
    """A FakeSTS answering with `behaviour`, stored as the secret of the role `fake` while it runs."""
    fake = FakeSTS(behaviour)
    try:
        assert put_fake_sts(d, fake.url).returncode == 0
        yield fake
    finally:
        fake.close()


def still_serving(d):
    started = time.monotonic()
    assert d.cli("env", "--role", "jwtonly", "--format", "json").returncode == 0
    return time.monotonic() - started


def test_an_sts_expiration_with_endless_fraction_digits_is_an_error_not_a_crash(broker):
    with fake_sts(broker, answer_credentials("2030-01-01T00:00:00.99999999999999999999Z")):
        result = broker.cli("env", "--role", "fake")
        assert result.returncode == 1 and "unreadable expiration" in result.err, result.err
        still_serving(broker)
        audit = broker.cli("audit", "show", "--since", "2026-11-26T00:00:00.99999999999999999999Z")
        assert audit.returncode != 0 and broker.proc.poll() is None


def test_sts_credentials_that_expire_too_soon_are_not_handed_out(broker):
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    with fake_sts(broker, answer_credentials(soon)):
        result = broker.cli("env", "--role", "fake")
        assert result.returncode == 1 and "outside what can be handed out" in result.err, result.err


def test_a_trickled_sts_body_is_cut_off_at_the_deadline_while_others_are_served(broker):
    with fake_sts(broker, trickle):
        started = time.monotonic()
        waiting = broker.popen("env", "--role", "fake")
        time.sleep(1)
        assert still_serving(broker) < 2, "other callers are served meanwhile"
        err = waiting.communicate(timeout=30)[1].decode(errors="replace")
        elapsed = time.monotonic() - started
        assert waiting.returncode == 1 and "no answer within 10 s" in err, err
        assert elapsed < 15, elapsed


def test_a_ttl_that_overflows_is_refused_and_the_daemon_lives(broker):
    for args in (["token", "--role", "jwtonly", "--ttl", "9223372036854775807s1s"],):
        result = broker.cli(*args)
        assert result.returncode == 2, result.err
    raw = subprocess.run(["curl", "-s", "--unix-socket", broker.socket, "-X", "POST", "-d",
                          '{"role": "jwtonly", "ttl": "9223372036854775807s1s"}', "http://x/v1/tokens"],
                         capture_output=True, text=True)
    assert '"bad_request"' in raw.stdout, raw.stdout
    assert broker.proc.poll() is None
    still_serving(broker)


def test_endpoints_with_bad_ports_or_user_info_are_refused_when_stored(broker):
    for url in ("http://127.0.0.1:99999/", "http://user:hunter2pw@127.0.0.1/", "http://127.0.0.1/path?x=1"):
        result = put_fake_sts(broker, url)
        assert result.returncode == 1 and "endpoint_url" in result.err, (url, result.err)
        assert "hunter2pw" not in result.err


def test_a_database_that_stops_answering_mid_session_is_cut_off_and_bound_tokens_still_end(broker, postgres):
    proxy = StallingProxy(postgres.port, b"TO CURRENT_USER")
    try:
        fields = {**postgres.secret_fields(), "port": proxy.port}
        assert broker.cli("secret", "put", "pg-stalled", "--type", "postgres", input=json.dumps(fields)).returncode == 0
        started = time.monotonic()
        result = broker.cli("env", "--role", "stalled", timeout=60)
        elapsed = time.monotonic() - started
        assert result.returncode == 1 and "no answer within" in result.err, result.err
        assert elapsed < 30, elapsed
        # A killed run of another role is still revoked promptly: nothing waits on the stuck peer.
        run = broker.popen("run", "--role", "jwtonly", "--", "sleep", "60", stdout=None, stderr=None)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not broker.tokens():
            time.sleep(0.05)
        run.kill()
        run.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and broker.tokens():
            time.sleep(0.1)
        assert broker.tokens() == []
    finally:
        proxy.close()
    assert postgres.roles("mlc_stalled") == [], "the stalled transaction never committed"


def test_a_token_revoked_while_its_credentials_are_made_ends_them_too(broker, postgres):
    token = broker.cli("token", "--role", "slow").out.strip()
    fetch = subprocess.Popen(["curl", "-s", "--unix-socket", broker.socket, "-X", "POST", "-H", f"Authorization: Bearer {token}",
                              "-d", "{}", "http://x/v1/credentials"], stdout=subprocess.PIPE, text=True)
    # Revoke while the role is being made: its create transaction is sleeping in the server.
    deadline = time.monotonic() + 20
    while postgres.sql("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(3)'") != [("1",)]:
        assert time.monotonic() < deadline, "the create statements never started"
        time.sleep(0.05)
    revoked = subprocess.run(["curl", "-s", "--unix-socket", broker.socket, "-X", "POST", "-H", f"Authorization: Bearer {token}",
                              "http://x/v1/tokens/revoke"], capture_output=True, text=True)
    assert '"revoked":true' in revoked.stdout.replace(" ", ""), revoked.stdout
    answer = json.loads(fetch.communicate(timeout=30)[0])
    assert answer["error"]["code"] == "unauthenticated", answer
    leases = broker.leases()
    assert [lease["state"] for lease in leases if lease["role"] == "slow"] == ["revoked"], leases
    assert postgres.roles("mlc_slow") == []
