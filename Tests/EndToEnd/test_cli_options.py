"""SPEC §5: `--socket PATH` (and `--json` where a verb has it) before or after the verb, or
$MLCRED_SOCKET, all mean the same; anything else before the verb is a usage error."""
import json

# $MLCRED_SOCKET pointing nowhere: a command that reaches the daemon found it by --socket.
ELSEWHERE = {"MLCRED_SOCKET": "/nonexistent/mlcred.sock"}


def test_socket_before_or_after_the_verb_or_in_the_environment_is_the_same(daemon):
    forms = [
        (["--socket", daemon.socket, "status", "--json"], ELSEWHERE),
        (["--socket=" + daemon.socket, "status", "--json"], ELSEWHERE),
        (["status", "--socket", daemon.socket, "--json"], ELSEWHERE),
        (["status", "--socket=" + daemon.socket, "--json"], ELSEWHERE),
        (["status", "--json"], None),  # the fixture's MLCRED_SOCKET
    ]
    answers = []
    for args, env in forms:
        result = daemon.cli(*args, env_extra=env)
        assert result.returncode == 0, (args, result.err)
        answers.append(json.loads(result.out))
    assert answers[0]["initialized"] is True and all(answer == answers[0] for answer in answers), answers
    unreached = daemon.cli("status", env_extra=ELSEWHERE)
    assert unreached.returncode == 5 and "/nonexistent/mlcred.sock" in unreached.err


def test_json_before_the_verb_is_the_verbs_own_json(daemon):
    daemon.cli("secret", "put", "s", "--type", "static", input='{"k": "v"}', check=0)
    assert json.loads(daemon.cli("--json", "status", check=0).out) == json.loads(daemon.cli("status", "--json", check=0).out)
    before = daemon.cli("--json", "--socket", daemon.socket, "secret", "list", env_extra=ELSEWHERE, check=0)
    after = daemon.cli("secret", "list", "--json", check=0)
    assert json.loads(before.out) == json.loads(after.out) and json.loads(after.out)["secrets"][0]["name"] == "s"


def test_run_and_credential_process_find_the_daemon_by_a_leading_socket(daemon):
    # Both are parsed by the fast path; the daemon's refusal shows it was reached.
    ran = daemon.cli("--socket", daemon.socket, "run", "--role", "nosuch", "--", "true", env_extra=ELSEWHERE)
    assert ran.returncode == 3 and "role 'nosuch' denied" in ran.err, ran.err
    fetched = daemon.cli("--socket=" + daemon.socket, "credential-process",
                         env_extra={**ELSEWHERE, "MLCRED_TOKEN": "mlc_" + "A" * 49})
    assert fetched.returncode == 1 and "malformed token" in fetched.err, fetched.err
    # `token` runs its default subcommand (issue) when no subcommand is named.
    issued = daemon.cli("--socket", daemon.socket, "token", "--role", "nosuch", env_extra=ELSEWHERE)
    assert issued.returncode == 3 and "role 'nosuch' denied" in issued.err, issued.err


def test_an_unknown_option_before_the_verb_or_one_the_verb_lacks_is_a_usage_error(daemon):
    for args, named in ((["--bogus", "status"], "--bogus"),
                        (["-x", "status"], "-x"),
                        # run prints no data (its passthrough reads --json as the command's start: no name)
                        (["--json", "run", "--role", "r", "--", "true"], ""),
                        (["--json", "audit", "export"], "--json"),  # export writes JSON lines always
                        (["--socket"], "--socket")):
        result = daemon.cli(*args, input="")
        lines = result.err.strip().splitlines()
        assert result.returncode == 2, (args, result.returncode, result.err)
        assert len(lines) == 1 and lines[0].startswith("mlcred: error: ") and named in lines[0], (args, result.err)
