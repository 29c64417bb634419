"""`mlcred run` at a terminal: the job gets a terminal of its own, input reaches it, output is masked."""
import shutil
import subprocess

import pytest

ROLE = 'name = "tty"\nprincipals = ["uid:0"]\n\n[[grant]]\nsecret = "hf"\ntype = "static"\nenv = { HF_TOKEN = "token" }\n'
VALUE = "hf_TTYvalue0123456789"


@pytest.fixture
def tty_daemon(broker_factory):
    if not shutil.which("script"):
        pytest.skip("script(1) is not installed")
    d = broker_factory({"tty.toml": ROLE})
    d.cli("secret", "put", "hf", "--type", "static", input='{"token": "%s"}' % VALUE, check=0)
    return d


def under_terminal(d, command, typed=None):
    """Runs `command` with a pseudo-terminal as its stdin and stdout, as a person at a terminal
    would; `typed`, a shell command, writes what that person types (script(1) forwards its stdin
    to the terminal). Returns the result with the terminal's output decoded as .out."""
    feeder = subprocess.Popen(["sh", "-c", typed], stdout=subprocess.PIPE) if typed else None
    result = subprocess.run(["script", "-qec", f"{d.mlcred} {command}", "/dev/null"],
                            stdin=feeder.stdout if feeder else None, capture_output=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "MLCRED_SOCKET": d.socket, "TERM": "xterm"})
    if feeder:
        feeder.wait()
    result.out = result.stdout.decode(errors="replace")
    return result


def test_a_job_run_at_a_terminal_gets_a_terminal_and_masked_output(tty_daemon):
    result = under_terminal(tty_daemon, "run --role tty -- sh -c 'test -t 0 && test -t 1 && echo IS-A-TTY; echo $HF_TOKEN; exit 6'")
    assert result.returncode == 6, result.out
    assert "IS-A-TTY" in result.out and "<mlcred:masked>" in result.out and VALUE not in result.out


def test_input_typed_at_the_terminal_reaches_the_job(tty_daemon):
    # The short pause lets the job start reading.
    result = under_terminal(tty_daemon, "run --role tty -- sh -c 'read x; echo got:$x'", typed="sleep 1; echo typed-line")
    assert result.returncode == 0 and "got:typed-line" in result.out


def test_a_secret_typed_at_a_terminal_is_not_echoed(tty_daemon):
    typed = '{"token": "typed-SECRET-4242"}\n'
    result = under_terminal(tty_daemon, "secret put typed --type static",
                            typed=f"sleep 1; printf '%s' '{typed}'; sleep 0.5; printf '\\004'")
    assert result.returncode == 0 and "stored secret typed version 1" in result.out, result.out
    assert "typed-SECRET-4242" not in result.out, "the secret was echoed to the terminal"
