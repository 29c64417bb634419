"""`mlcred run` at a terminal: the job gets a terminal of its own, input reaches it, output is masked."""
import os
import shutil
import subprocess

import pytest

from conftest import write_policies

ROLE = 'name = "tty"\nprincipals = ["uid:0"]\n\n[[grant]]\nsecret = "hf"\ntype = "static"\nenv = { HF_TOKEN = "token" }\n'
VALUE = "hf_TTYvalue0123456789"


@pytest.fixture
def tty_daemon(daemon_factory):
    if not shutil.which("script"):
        pytest.skip("script(1) is not installed")
    d = daemon_factory()
    d.start(extra=["--policies", write_policies(d.root, {"tty.toml": ROLE})])
    d.init()
    d.cli("secret", "put", "hf", "--type", "static", input='{"token": "%s"}' % VALUE, check=0)
    return d


def under_terminal(d, command, stdin=None):
    """Runs `command` with a pseudo-terminal as its stdin and stdout, as a person at a terminal would."""
    return subprocess.run(["script", "-qec", command, "/dev/null"], input=stdin, capture_output=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "MLCRED_SOCKET": d.socket, "TERM": "xterm"})


def test_a_job_run_at_a_terminal_gets_a_terminal_and_masked_output(tty_daemon):
    mlcred = os.path.join(tty_daemon.bins, "mlcred")
    result = under_terminal(tty_daemon, f"{mlcred} run --role tty -- sh -c 'test -t 0 && test -t 1 && echo IS-A-TTY; echo $HF_TOKEN; exit 6'")
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 6, out
    assert "IS-A-TTY" in out and "<mlcred:masked>" in out and VALUE not in out


def test_input_typed_at_the_terminal_reaches_the_job(tty_daemon):
    mlcred = os.path.join(tty_daemon.bins, "mlcred")
    # script(1) forwards its stdin to the terminal; the short pause lets the job start reading.
    feeder = subprocess.Popen(["sh", "-c", "sleep 1; echo typed-line"], stdout=subprocess.PIPE)
    result = subprocess.run(["script", "-qec", f"{mlcred} run --role tty -- sh -c 'read x; echo got:$x'", "/dev/null"],
                            stdin=feeder.stdout, capture_output=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "MLCRED_SOCKET": tty_daemon.socket, "TERM": "xterm"})
    feeder.wait()
    assert result.returncode == 0 and "got:typed-line" in result.stdout.decode(errors="replace")


def test_a_secret_typed_at_a_terminal_is_not_echoed(tty_daemon):
    mlcred = os.path.join(tty_daemon.bins, "mlcred")
    typed = '{"token": "typed-SECRET-4242"}\n'
    feeder = subprocess.Popen(["sh", "-c", f"sleep 1; printf '%s' '{typed}'; sleep 0.5; printf '\\004'"], stdout=subprocess.PIPE)
    result = subprocess.run(["script", "-qec", f"{mlcred} secret put typed --type static", "/dev/null"],
                            stdin=feeder.stdout, capture_output=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "MLCRED_SOCKET": tty_daemon.socket, "TERM": "xterm"})
    feeder.wait()
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0 and "stored secret typed version 1" in out, out
    assert "typed-SECRET-4242" not in out, "the secret was echoed to the terminal"
