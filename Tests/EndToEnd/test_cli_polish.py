"""What a new user meets at the command line (issue 16 items 7-10): completions and man pages
from the argument parser, installed and removed by the scripts; --json on the verbs that act
(same exit codes as text); relative --since; `mlcred jwks` for a verifier elsewhere; hints that
fit what was typed; counts that read right."""
import json
import os
import shutil
import subprocess
import tempfile
import time

import jwt
import pytest
from jwt.algorithms import OKPAlgorithm

from conftest import (REPO, RELEASE_BUILD_TIMEOUT, Progress, kept_log_path, one_error_line, role_toml, run_mlcred,
                      run_with_progress, wait_for, write_policies)

SHELLS = ("bash", "zsh", "fish")


def tracking_role(name, principals, **settings):
    grant = {"name": "tracking", "secret": "tracking", "type": "jwt", "audience": "mlflow"}
    return role_toml(name, principals, grant, **settings)


@pytest.fixture
def broker(broker_factory, users):
    """A daemon with one role, 'train', for root and the ml group, whose jwt grant signs with 'tracking'."""
    d = broker_factory({"train.toml": tracking_role("train", ["uid:0", f"group:{users['ml_group']}"], ttl="10m", max_ttl="1h")})
    d.cli("secret", "generate", "tracking", "--type", "jwt-signer", "--issuer", "https://mlcred.test", check=0)
    return d


def bash_completions(script, words):
    """The words bash offers after `words` (the last one being completed) with `script` loaded."""
    line = " ".join(words)
    program = (f'source "$1"\nCOMP_WORDS=({" ".join(json.dumps(w) for w in words)})\n'
               f'COMP_CWORD={len(words) - 1}\nCOMP_LINE={json.dumps(line)}\nCOMP_POINT=${{#COMP_LINE}}\n'
               f'COMPREPLY=()\n_mlcred mlcred {json.dumps(words[-1])} {json.dumps(words[-2])}\n'
               'printf "%s\\n" "${COMPREPLY[@]}"\n')
    result = subprocess.run(["bash", "-c", program, "bash", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


# Item 7: completions and man pages

def test_completion_scripts_come_from_the_parser_and_complete_verbs_and_values(bins, workdir):
    for shell in SHELLS:
        result = run_mlcred(bins, "--generate-completion-script", shell)
        assert result.returncode == 0 and result.err == "", (shell, result.err)
        for verb in ("jwks", "secret", "audit", "reload"):
            assert verb in result.out, (shell, verb)
        checker = shutil.which(shell)
        if checker:  # zsh and fish are not on every host: their syntax is checked where they are
            with open(os.path.join(workdir, f"completion.{shell}"), "w") as f:
                f.write(result.out)
            assert subprocess.run([checker, "-n", f.name]).returncode == 0, shell
    script = os.path.join(workdir, "completion.bash")
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    assert bash_completions(script, ["mlcred", "jw"]) == {"jwks"}
    assert bash_completions(script, ["mlcred", "secret", "put", "hf", "--type", ""]) == {"static", "aws", "postgres"}
    assert "--since" in bash_completions(script, ["mlcred", "audit", "show", "--s"])


@pytest.mark.release_build
def test_install_puts_completions_and_man_pages_where_shells_and_man_look_and_uninstall_removes_them(
        request, workdir, release_build):
    destdir = os.path.join(workdir, "install-completions")
    status, output = run_with_progress([os.path.join(REPO, "scripts/install"), "--destdir", destdir], Progress(request.config),
                                       kept_log_path(workdir, "install-completions.log"), RELEASE_BUILD_TIMEOUT)
    assert status == 0, "\n".join(output)
    share = os.path.join(destdir, "usr/local/share")
    installed = []
    for tool in ("mlcred", "mlcredd"):
        installed += [f"bash-completion/completions/{tool}", f"zsh/site-functions/_{tool}",
                      f"fish/vendor_completions.d/{tool}.fish", f"man/man1/{tool}.1"]
    for path in installed:
        full = os.path.join(share, path)
        assert os.path.getsize(full) > 0 and os.stat(full).st_mode & 0o777 == 0o644, path
    assert "jwks" in bash_completions(os.path.join(share, "bash-completion/completions/mlcred"), ["mlcred", "j"])
    # "are the same" ends a line of help text that starts with a quote, which roff would read as a
    # request and drop unless the installer escaped it.
    for tool, expected in (("mlcred", ["jwks", "--since", "are the same"]), ("mlcredd", ["--dev", "--policies"])):
        source = os.path.join(share, f"man/man1/{tool}.1")
        with open(source) as f:
            assert [line for line in f if line.startswith("'") or line == "\n"] == [], tool
        page = subprocess.run(["man", "-l", source], capture_output=True, text=True, env={**os.environ, "MANWIDTH": "100"})
        assert page.returncode == 0 and page.stderr == "", (tool, page.stderr)  # no roff warnings
        text = " ".join(page.stdout.split())
        for words in expected:
            assert words in text, (tool, words)
    subprocess.run([os.path.join(REPO, "scripts/uninstall"), "--destdir", destdir], check=True, capture_output=True)
    assert [path for path in installed if os.path.exists(os.path.join(share, path))] == []


@pytest.mark.release_build
def test_the_release_cli_links_no_foundation_so_run_starts_small(release_build):
    """`mlcred run` starts in a few ms because the static CLI links FoundationEssentials only
    (docs/performance.md): Foundation would bring ICU and its data (the CLI was 81.5 MB with it,
    30.1 MB without). A module that imports Foundation into the CLI fails here."""
    binary = os.path.join(release_build, "mlcred")
    symbols = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    linked = [name for name in ("FoundationInternationalization", "_FoundationICU") if name in symbols]
    assert linked == [], f"the release mlcred links {linked} ({os.path.getsize(binary) / 1e6:.1f} MB)"
    assert os.path.getsize(binary) < 50_000_000, os.path.getsize(binary)


# Item 7: --json on the verbs that act, with the text form's exit codes

def test_policy_reload_json_reports_the_set_or_every_error_and_exits_as_text_does(broker):
    loaded = broker.cli("policy", "reload", "--json", check=0)
    report = json.loads(loaded.out)
    assert report["ok"] is True and report["roles"] == 1 and report["errors"] == [] and report["digest"], report
    assert report["directory"] == broker.policies
    with open(os.path.join(broker.policies, "broken.toml"), "w") as f:
        f.write('name = "broken"\nprincipals = ["uid:0"]\nttl = "forever"\n')
    text = broker.cli("policy", "reload")
    failed = broker.cli("--json", "policy", "reload")
    assert text.returncode == failed.returncode == 1, (text.err, failed.err)
    report = json.loads(failed.out)
    assert report["ok"] is False and report["roles"] is None and "last good set" in report["message"]
    assert report["directory"] == broker.policies and report["digest"] is None, report  # it was null (new-user review)
    assert any("broken.toml:3: bad duration" in line for line in report["errors"]), report
    os.remove(os.path.join(broker.policies, "broken.toml"))


def test_secret_rm_json_names_what_was_removed_and_a_missing_secret_fails_alike(broker):
    broker.cli("secret", "put", "old", "--type", "static", input='{"k": "v"}', check=0)
    assert json.loads(broker.cli("secret", "rm", "old", "--json", check=0).out) == {"removed": "old"}
    text, as_json = broker.cli("secret", "rm", "old"), broker.cli("--json", "secret", "rm", "old")
    assert text.returncode == as_json.returncode == 1 and as_json.out == "", (text.err, as_json.out)
    assert "no secret named 'old'" in one_error_line(as_json.err)


def test_lease_and_token_revoke_json_print_the_daemons_answer_with_the_text_exit_codes(broker):
    exported = json.loads(broker.cli("env", "--role", "train", "--format", "json", check=0).out)
    lease = broker.leases(all=False)[0]
    answer = json.loads(broker.cli("lease", "revoke", lease["id"], "--json", check=0).out)
    assert answer["revoked"] == lease["id"] and answer["unconfirmed"] == []
    # A JWT cannot be recalled: the answer says until when it stays valid.
    assert [l["id"] for l in answer["still_valid"]] == [lease["id"]]
    again_text, again_json = broker.cli("lease", "revoke", lease["id"]), broker.cli("lease", "revoke", lease["id"], "--json")
    assert again_text.returncode == again_json.returncode, (again_text.err, again_json.err)

    accessor = broker.tokens()[0]["accessor"]
    answer = json.loads(broker.cli("token", "revoke", accessor, "--json", check=0).out)
    assert answer["revoked"] == accessor and {"unconfirmed", "still_valid"} <= set(answer)
    again_text, again_json = broker.cli("token", "revoke", accessor), broker.cli("--json", "token", "revoke", accessor)
    assert again_text.returncode == again_json.returncode == 1 and again_json.out == ""
    assert "no live token" in one_error_line(again_json.err)
    assert exported["MLCRED_TOKEN"].startswith("mlc_")


CASES = """[[case]]
user = "bob"
groups = ["ml"]
role = "train"
expect = "allow"

[[case]]
user = "eve"
role = "train"
expect = "allow"
"""


def test_policy_test_json_lists_each_failing_case_and_exits_as_text_does(bins, scratch):
    policies = write_policies(scratch, {"train.toml": tracking_role("train", ["group:ml"]), "tests/cases.toml": CASES})
    text, as_json = run_mlcred(bins, "policy", "test", policies), run_mlcred(bins, "--json", "policy", "test", policies)
    assert text.returncode == as_json.returncode == 1 and "1 passed, 1 failed" in text.out, (text.out, as_json.err)
    report = json.loads(as_json.out)
    assert (report["ok"], report["passed"], report["failed"], report["errors"]) == (False, 1, 1, []), report
    [failure] = report["failures"]
    assert failure["file"].endswith("cases.toml") and failure["line"] > 5 and "eve" in failure["case"], failure
    assert (failure["expected"], failure["got"]) == ("allow", "deny") and "matches none" in failure["reasons"][-1]
    assert "no policy test cases found" not in text.err


def test_policy_test_without_cases_says_none_were_found(bins, scratch):
    """A new user's report: `policy test DIR` without `tests/` printed `0 passed, 0 failed`, exit 0,
    easy to read as a passing suite."""
    policies = write_policies(scratch, {"train.toml": tracking_role("train", ["group:ml"])})
    result = run_mlcred(bins, "policy", "test", policies)
    assert result.returncode == 0 and "0 passed, 0 failed" in result.out, result.err
    assert f"no policy test cases found: they go in {policies}/tests/*.toml" in result.err, result.err



@pytest.mark.parametrize("verb", [["policy", "validate"], ["policy", "test"], ["policy", "explain", "--role", "train", "--uid", "1"]])
def test_policy_commands_given_a_missing_path_or_a_file_say_so_and_name_the_directory_to_give(bins, scratch, verb):
    """`policy validate /nonexistent` printed `/nonexistent:0: cannot read the directory`, a
    FILE:LINE pointing at no line, and `policy validate train.toml` said `Not a directory`."""
    policies = write_policies(scratch, {"train.toml": tracking_role("train", ["group:ml"])})
    missing = run_mlcred(bins, *verb[:2], os.path.join(scratch, "nowhere"), *verb[2:])
    assert missing.returncode == 1, (missing.out, missing.err)
    assert f"cannot use policy directory {scratch}/nowhere: No such file or directory" in missing.err, missing.err
    assert ":0:" not in missing.err and "role files (*.toml)" in missing.err, missing.err
    a_file = run_mlcred(bins, *verb[:2], os.path.join(policies, "train.toml"), *verb[2:])
    assert a_file.returncode == 1, (a_file.out, a_file.err)
    assert f"{policies}/train.toml is a file: 'policy {verb[1]}' takes the whole policy directory" in a_file.err, a_file.err
    assert f"give its directory: 'mlcred policy {verb[1]} {policies}'" in a_file.err, a_file.err
    given = run_mlcred(bins, *verb[:2], policies, *verb[2:])
    assert "is a file" not in given.err and "cannot use policy directory" not in given.err, given.err


# Item 8: a second `token revoke --current` is not an error

def test_token_revoke_current_of_an_ended_token_says_so_and_exits_0(broker, users):
    user = users["ml"]
    token = json.loads(broker.cli("env", "--role", "train", "--format", "json", user=user, check=0).out)["MLCRED_TOKEN"]
    first = broker.cli("token", "revoke", "--current", user=user, env_extra={"MLCRED_TOKEN": token})
    assert first.returncode == 0 and "revoked the current token" in first.out, first.err
    second = broker.cli("token", "revoke", "--current", user=user, env_extra={"MLCRED_TOKEN": token})
    assert second.returncode == 0, second.err
    assert "already revoked: nothing to revoke" in second.out and "obtain a new token" not in second.err + second.out
    as_json = broker.cli("token", "revoke", "--current", "--json", user=user, env_extra={"MLCRED_TOKEN": token})
    assert as_json.returncode == 0 and json.loads(as_json.out) == {
        "revoked": 0, "already_ended": 1, "unconfirmed": [], "still_valid": []}, as_json.out
    # Several tokens, one of them live: that one is revoked, the ended one reported.
    live = json.loads(broker.cli("env", "--role", "train", "--format", "json", user=user, check=0).out)["MLCRED_TOKEN"]
    both = broker.cli("token", "revoke", "--current", user=user, env_extra={"MLCRED_TOKENS": f"{token},{live}"})
    assert both.returncode == 0, both.err
    assert "revoked 1 of the 2 current tokens" in both.out and "1 of the 2 current tokens was already revoked" in both.out
    assert [t for t in broker.tokens() if t["user"] == user] == []
    # An expired token: nothing left to revoke either (the daemon ends its leases itself).
    short = broker.cli("token", "--role", "train", "--ttl", "1s", user=user, check=0).out.strip()
    wait_for(lambda: broker.http("POST", "/v1/credentials", {}, token=short, user=user)[0] == 401, 10, "the 1 s token to expire")
    expired = broker.cli("token", "revoke", "--current", user=user, env_extra={"MLCRED_TOKEN": short})
    assert expired.returncode == 0 and "already expired" in expired.out, (expired.out, expired.err)
    # Once the sweeper has ended it (about a second later), it is still an expired token, not a
    # revoked one: a new user saw `token_revoked` and "already revoked" for a token that expired.
    wait_for(lambda: any(r["action"] == "token.expire" for r in broker.audit(limit=20)), 10, "the sweeper to end the expired token")
    status, body = broker.http("POST", "/v1/credentials", {}, token=short, user=user)
    assert (status, body["error"]["reason"]) == (401, "token_expired"), body
    swept = broker.cli("token", "revoke", "--current", user=user, env_extra={"MLCRED_TOKEN": short})
    assert swept.returncode == 0 and "already expired" in swept.out, (swept.out, swept.err)


# Item 7: relative --since

def test_audit_show_since_takes_relative_times_and_rfc_3339(broker):
    everything = broker.audit(limit=1000)
    assert everything
    for since in ("1h", "30m", "2d", "1w", "today", "yesterday", "2000-01-01T00:00:00Z", "2000-01-01"):
        shown = json.loads(broker.cli("audit", "show", "--since", since, "--limit", "1000", "--json", check=0).out)
        # Every record was written a moment ago, after any of these.
        assert [r["seq"] for r in shown][:len(everything)] == [r["seq"] for r in everything], since
    # A moment from now back zero seconds, and the year 2099: nothing yet.
    time.sleep(0.01)
    assert [r for r in json.loads(broker.cli("audit", "show", "--since", "0s", "--json", check=0).out)
            if r["seq"] <= everything[-1]["seq"]] == []
    assert json.loads(broker.cli("audit", "show", "--since", "2099-01-01T00:00:00Z", "--json", check=0).out) == []
    for bad in ("1y", "1.5h", "h", "last week", "2026-12-02T11:00:00+01:00"):
        refused = broker.cli("audit", "show", "--since", bad)
        line = one_error_line(refused.err)
        assert refused.returncode == 2 and "'today' or 'yesterday'" in line and "mlcred audit show --help" in line, (bad, line)


# Item 7: the JWKS for a verifier elsewhere

def test_jwks_prints_the_key_set_any_caller_may_read_and_a_verifier_elsewhere_checks_a_jwt_with_it(broker, users, scratch):
    printed = broker.cli("jwks", user=users["nonadmin"], check=0)
    as_json = broker.cli("--json", "jwks", user=users["nonadmin"], check=0)
    keys = json.loads(printed.out)
    assert keys == json.loads(as_json.out) == broker.http("GET", "/v1/jwks")[1]
    assert [key["kty"] for key in keys["keys"]] == ["OKP"] and all("d" not in key for key in keys["keys"]), "public keys only"
    # The verifier has the printed file, never the socket.
    path = os.path.join(scratch, "jwks.json")
    with open(path, "w") as f:
        f.write(printed.out)
    token = json.loads(broker.cli("env", "--role", "train", "--format", "json", check=0).out)["MLCRED_JWT"]
    with open(path) as f:
        published = {key["kid"]: key for key in json.load(f)["keys"]}
    key = OKPAlgorithm.from_jwk(json.dumps(published[jwt.get_unverified_header(token)["kid"]]))
    claims = jwt.decode(token, key=key, algorithms=["EdDSA"], audience="mlflow", issuer="https://mlcred.test")
    assert claims["sub"] == "root"


# Item 8: hints that fit

@pytest.mark.parametrize("secret_type,shown,not_shown", [
    ("static", '{"token": "..."}', "access_key_id"),
    ("aws", '"access_key_id"', '"host"'),
    ("postgres", '"port": 5432', "access_key_id"),
])
def test_secret_put_of_non_json_shows_an_example_of_the_given_type(daemon, secret_type, shown, not_shown):
    refused = daemon.cli("secret", "put", "s", "--type", secret_type, input="token=abc")
    line = one_error_line(refused.err)
    assert refused.returncode == 2 and shown in line and not_shown not in line, line
    assert "token=abc" not in line and "abc" not in line, "the input is a secret: never quoted back"


def test_token_without_role_points_at_the_help_that_has_it_and_lease_list_takes_one_scope(bins):
    missing = run_mlcred(bins, "token")
    assert missing.returncode == 2 and "(hint: see 'mlcred token issue --help')" in missing.err, missing.err
    both = run_mlcred(bins, "lease", "list", "--ended", "--all")
    assert both.returncode == 2 and "give --ended or --all, not both" in both.err, both.err


def test_audit_show_of_an_unknown_node_says_there_are_no_records_of_it(broker):
    result = broker.cli("audit", "show", "--node", "nope")
    assert result.returncode == 0 and result.out == "", result.out
    assert "no audit records of node 'nope'" in result.err and "fleet status" in result.err, result.err
    node = broker.audit(limit=1)[0]["node"]
    known = broker.cli("audit", "show", "--node", node, "--limit", "2")
    assert known.returncode == 0 and known.out and "no audit records" not in known.err, known.err


@pytest.mark.parametrize("argv", [["run", "--role", "Demo", "--", "true"], ["env", "--role", "Demo"], ["token", "--role", "Demo"],
                                  ["secret", "put", "x", "--type", "statik"], ["secret", "put", "x", "--type", "jwt-signer"]])
def test_names_and_types_the_daemon_would_refuse_are_usage_errors_said_before_connecting(bins, argv):
    """SPEC §5: 2 is usage. A mistyped role name or secret type went to the daemon and came back
    as exit 1 (no daemon runs here: the check is the CLI's own)."""
    result = run_mlcred(bins, *argv, input="{}")
    assert result.returncode == 2, (result.returncode, result.err)
    assert "invalid role name: use 1-128 lower-case" in result.err or "--type must be static, aws or postgres" in result.err \
        or "mlcred secret generate NAME --type jwt-signer" in result.err, result.err


def test_a_zero_ttl_is_refused_as_zero_not_as_a_malformed_duration(bins):
    refused = run_mlcred(bins, "run", "--role", "train", "--ttl", "0s", "--", "true")
    assert refused.returncode == 2 and "--ttl must be a duration above zero" in refused.err, refused.err


def test_a_short_passphrase_is_told_how_long_it_must_be(daemon_factory):
    d = daemon_factory().start()
    refused = d.cli("vault", "init", "--passphrase-stdin", input="short")
    line = one_error_line(refused.err)
    assert refused.returncode == 1 and "at least 8 characters" in line and "mlcred help" not in line, line


def test_offline_explain_for_another_environment_speaks_of_a_simulation(bins, scratch):
    policies = write_policies(scratch, {"train.toml": tracking_role("train", ["uid:0"], environments=["dev"])})
    result = run_mlcred(bins, "policy", "explain", policies, "--role", "train", "--uid", "0", "--environment", "prod")
    assert result.returncode == 3, result.err
    assert "the simulated environment is 'prod'" in result.out and "this daemon" not in result.out, result.out


def test_an_admin_refusal_names_the_command_typed(daemon, users):
    for args, typed in ((["secret", "list"], "mlcred secret list"),
                        (["--json", "lease", "list", "--all"], "mlcred lease list"),
                        (["audit", "show", "--since", "1h"], "mlcred audit show")):
        refused = daemon.cli(*args, user=users["nonadmin"])
        line = one_error_line(refused.err)
        assert refused.returncode == 3 and "needs an admin" in line and f"run '{typed}' with sudo" in line, line
    line = one_error_line(daemon.cli("secret", "list", user=users["nonadmin"]).err)
    assert "listing secrets needs an admin" in line and "secret.list" not in line, line
    assert "needs an admin (a member of mlcred-t-admins" in line, line


# Item 9: counts read right

def test_counts_are_pluralized(broker, scratch):
    assert "reloaded 1 role from" in broker.cli("policy", "reload", check=0).out
    broken = write_policies(os.path.join(scratch, "one"), {"a.toml": 'name = "a"\nprincipals = ["uid:0"]\nttl = "forever"\n'})
    for args in (["policy", "validate", broken], ["policy", "test", broken]):
        result = broker.cli(*args)
        assert result.returncode == 1 and " 1 error in " in result.err, (args, result.err)


def test_policy_diff_says_who_can_no_longer_assume_a_removed_role(broker, scratch):
    old = write_policies(os.path.join(scratch, "old"), {"train.toml": tracking_role("train", ["uid:0", "group:ml"])})
    new = write_policies(os.path.join(scratch, "new"), {"other.toml": tracking_role("other", ["uid:0"])})
    diff = broker.cli("policy", "diff", old, new, check=0).out
    assert "role 'train' removed: uid:0, group:ml can no longer assume it" in diff and "lose it" not in diff, diff


def test_audit_show_since_shows_the_newest_records_of_a_window_larger_than_its_limit(broker):
    """A new user's report: `audit show --since 1h` printed the window's first 50 records and
    left out the newest, silently. Now the newest `--limit` records are shown, with a note."""
    for _ in range(8):
        broker.cli("status", check=0)
        broker.cli("token", "--role", "train", check=0)
    seqs = lambda out: [r["seq"] for r in json.loads(out)]
    before = seqs(broker.cli("audit", "show", "--limit", "1000", "--json", check=0).out)
    assert len(before) > 6
    result = broker.cli("audit", "show", "--since", "1h", "--limit", "5", "--json")
    assert result.returncode == 0, result.err
    shown = seqs(result.out)
    after = seqs(broker.cli("audit", "show", "--limit", "1000", "--json", check=0).out)
    # The five newest when it ran (any record written meanwhile comes after them).
    assert shown[-1] >= before[-1] and shown == [seq for seq in after if seq <= shown[-1]][-5:], (shown, after)
    assert "more than 5 records since" in result.err and "showing the newest 5" in result.err, result.err
    # A window that fits is shown whole, oldest first, with no note.
    whole = broker.cli("audit", "show", "--since", "1h", "--limit", "1000", "--json")
    assert seqs(whole.out)[:len(after)] == after and whole.err == "", whole.err


def test_run_names_an_unknown_option_before_role_and_shows_help_wherever_help_is_asked(bins):
    """A new user's report: `mlcred --json run --role train -- true` said "Missing expected
    argument '--role'" though --role was given (the unknown option took it into the command)."""
    for args in (["--json", "run", "--role", "train", "--", "true"], ["run", "--json", "--role", "train", "--", "true"]):
        result = run_mlcred(bins, *args)
        assert result.returncode == 2, result.err
        assert "unknown option '--json'" in result.err and "Missing expected argument" not in result.err, result.err
    missing = run_mlcred(bins, "run", "--", "true")
    assert missing.returncode == 2 and "missing --role" in missing.err, missing.err
    for args in (["run", "--help"], ["run", "-h"], ["run", "--role", "train", "--help"]):
        shown = run_mlcred(bins, *args)
        assert shown.returncode == 0 and "OVERVIEW: Run a command" in shown.out, (args, shown.err)


def test_status_says_what_to_do_next_and_init_of_an_initialized_vault_does_not_say_unseal(daemon_factory):
    """A new user's report: a fresh daemon's `status` said `initialized: no` and nothing more;
    `vault init` of an unsealed vault told them to unseal it."""
    d = daemon_factory().start()
    fresh = d.cli("status", check=0)
    assert "initialized: no" in fresh.out and "next: an admin initializes the vault: mlcred vault init" in fresh.out, fresh.out
    d.init()
    assert "next:" not in d.cli("status", check=0).out
    again = d.cli("vault", "init", "--passphrase-stdin", input="another passphrase of some length")
    assert again.returncode != 0 and "'mlcred status' says whether it is sealed" in again.err, again.err
    d.cli("vault", "seal", check=0)
    sealed = d.cli("status")
    assert "next: an admin unseals it: mlcred vault unseal" in sealed.out, sealed.out


def test_a_refused_connection_names_the_directory_that_refuses_or_else_the_sockets_group(bins, workdir, users):
    """A new user's report: a socket in a 0700 directory was blamed on the socket's group."""
    import socket as sockets
    closed = tempfile.mkdtemp(prefix="closed-", dir=workdir)  # 0700, root's
    inner = os.path.join(closed, "run")
    os.mkdir(inner, 0o755)
    listener = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    listener.bind(os.path.join(inner, "mlcred.sock"))
    listener.listen(1)
    open_dir = tempfile.mkdtemp(prefix="open-", dir=workdir)
    os.chmod(open_dir, 0o755)
    grouped = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    grouped.bind(os.path.join(open_dir, "mlcred.sock"))
    grouped.listen(1)
    os.chmod(os.path.join(open_dir, "mlcred.sock"), 0o660)
    try:
        result = run_mlcred(bins, "status", socket_path=os.path.join(inner, "mlcred.sock"), user=users["ml"])
        assert result.returncode == 5, result.err
        assert f"the directory {closed} does not let you through" in result.err, result.err  # the 0700 one, not run/ below it
        result = run_mlcred(bins, "status", socket_path=os.path.join(open_dir, "mlcred.sock"), user=users["ml"])
        assert result.returncode == 5 and "the socket admits its group only" in result.err, result.err
    finally:
        listener.close()
        grouped.close()


def test_explain_says_which_grants_a_job_receives_in_the_environment(broker_factory, bins, scratch):
    """A new user's report: the docs' example (a grant narrowed to prod) gave a dev daemon's job a
    token and no JWT, and nothing said why. `policy explain` now lists each grant, online and offline."""
    roles = {"train.toml": role_toml("train", ["uid:0"],
                                     {"name": "tracking", "secret": "tracking", "type": "jwt", "audience": "mlflow", "environments": ["prod"]},
                                     {"name": "hf", "secret": "hf", "type": "static"})}
    d = broker_factory(roles)  # a --dev daemon: environment dev
    online = d.cli("policy", "explain", "--role", "train", "--uid", "0", check=0)
    offline = run_mlcred(bins, "policy", "explain", d.policies, "--role", "train", "--uid", "0", "--environment", "dev")
    for result in (online, offline):
        assert "grant 'tracking' (jwt) is not given in environment 'dev': only in prod" in result.out, result.out
        assert "grant 'hf' (static) is given" in result.out, result.out
    in_prod = run_mlcred(bins, "policy", "explain", d.policies, "--role", "train", "--uid", "0", "--environment", "prod")
    assert "grant 'tracking' (jwt) is given" in in_prod.out, in_prod.out
    # An environment typed with control characters is shown, not obeyed.
    hostile = run_mlcred(bins, "policy", "explain", d.policies, "--role", "train", "--uid", "0", "--environment", "\x1b[2Jdev")
    assert "\x1b" not in hostile.out and "is not given in environment" in hostile.out, hostile.out
    # A refusal lists no grants.
    refused = run_mlcred(bins, "policy", "explain", d.policies, "--role", "train", "--uid", "1234")
    assert refused.returncode == 3 and "grant '" not in refused.out, refused.out
