"""Policies as code: validate, test, explain and diff offline, StrictModes on the daemon's files."""
import json
import os
import subprocess

import pytest

from conftest import run_mlcred, write_policies

GOOD = {
    "train.toml": 'name = "train"\nprincipals = ["group:mlcred-t-ml"]\nttl = "1h"\nmax_ttl = "12h"\n\n'
                  '[[grant]]\nsecret = "tracking"\ntype = "jwt"\naudience = "mlflow"\n',
    "alice.toml": 'name = "alice-only"\nprincipals = ["user:mlcred-t-alice"]\n\n[[grant]]\nsecret = "tracking"\ntype = "jwt"\naudience = "a"\n',
    "prod.toml": 'name = "prod-only"\nenvironments = ["prod"]\nprincipals = ["group:mlcred-t-ml"]\n',
    "phi.toml": 'name = "phi-train"\nphi = true\nprincipals = ["group:mlcred-t-ml"]\n\n[[grant]]\nsecret = "tracking"\ntype = "jwt"\naudience = "p"\n',
    "aws/read.json": '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}',
    "s3.toml": 'name = "s3"\nprincipals = ["group:mlcred-t-ml"]\n\n[[grant]]\nsecret = "aws-main"\ntype = "aws-assume-role"\n'
               'role_arn = "arn:aws:iam::123456789012:role/read"\nsession_policy_file = "aws/read.json"\n',
}

PG_CREATE = 'create = ["CREATE ROLE \\"{{name}}\\" LOGIN PASSWORD \'{{password}}\' VALID UNTIL \'{{expiration}}\'"]\n'

BROKEN = {
    "01-unknown-key.toml": ('name = "a"\nprincipals = ["uid:0"]\ncolour = "blue"\n', "01-unknown-key.toml:3: unknown key 'colour'"),
    "02-duration.toml": ('name = "b"\nprincipals = ["uid:0"]\nmax_ttl = "soon"\n', "02-duration.toml:3: bad duration for 'max_ttl'"),
    "03-principal.toml": ('name = "c"\n\nprincipals = ["crew:ml"]\n', "03-principal.toml:3: bad principal 'crew:ml'"),
    "04-grant-type.toml": ('name = "d"\nprincipals = ["uid:0"]\n[[grant]]\nsecret = "s"\ntype = "ftp"\n', "04-grant-type.toml:5: unknown grant type 'ftp'"),
    "05-missing-field.toml": ('name = "e"\nprincipals = ["uid:0"]\n\n[[grant]]\nsecret = "s"\ntype = "jwt"\n', "05-missing-field.toml:4: jwt grant needs 'audience'"),
    "06-ttl.toml": ('name = "f"\nprincipals = ["uid:0"]\nttl = "2h"\nmax_ttl = "1h"\n', "06-ttl.toml:3: ttl (2h) is greater than max_ttl (1h)"),
    "07-file.toml": ('name = "g"\nprincipals = ["uid:0"]\n[[grant]]\nsecret = "s"\ntype = "aws-assume-role"\nrole_arn = "arn:aws:iam::1:role/r"\n'
                     'session_policy_file = "nope.json"\n', "07-file.toml:7: session_policy_file 'nope.json' does not exist"),
    "08-not-json.toml": ('name = "h"\nprincipals = ["uid:0"]\n[[grant]]\nsecret = "s"\ntype = "aws-federation-token"\nsession_policy_file = "bad.json"\n',
                         "08-not-json.toml:6: session_policy_file 'bad.json' is not a JSON IAM policy document"),
    "09-phi-static.toml": ('name = "i"\nphi = true\nprincipals = ["uid:0"]\n[[grant]]\nsecret = "s"\ntype = "static"\n', "09-phi-static.toml:4: static grant 's' in phi role"),
    "10-dup.toml": ('name = "a"\nprincipals = ["uid:0"]\nbroken = 1\n', "10-dup.toml:1: duplicate role name 'a'"),
    "11-syntax.toml": ('name = "k"\nprincipals = ["uid:0"\n', "11-syntax.toml:2:"),
    "12-reserved-claim.toml": ('name = "l"\nprincipals = ["uid:0"]\n[[grant]]\nsecret = "s"\ntype = "jwt"\naudience = "x"\nclaims = { exp = 1 }\n',
                               "12-reserved-claim.toml:7: claim 'exp' is set by mlcred"),
    # Two grants setting one variable: refused at load, not first at `run` (issue 16 item 4).
    "13-same-variable.toml": ('name = "m"\nprincipals = ["uid:0"]\n[[grant]]\nsecret = "t1"\ntype = "jwt"\naudience = "x"\n'
                              '[[grant]]\nsecret = "t2"\ntype = "jwt"\naudience = "y"\n',
                              "13-same-variable.toml:7: grants 't1' and 't2' both set MLCRED_JWT"),
    "14-same-pg.toml": ('name = "n"\nprincipals = ["uid:0"]\n[[grant]]\nsecret = "db1"\ntype = "postgres-role"\n' + PG_CREATE +
                        '[[grant]]\nsecret = "db2"\ntype = "postgres-role"\n' + PG_CREATE + 'env = { DB2_PASSWORD = "password", PGHOST = "host" }\n',
                        "14-same-pg.toml:7: grants 'db1' and 'db2' both set PGHOST"),
}


def mlcred(bins, *args, cwd=None):
    """mlcred offline: no daemon socket in its environment."""
    return run_mlcred(bins, *args, cwd=cwd)


def test_validate_reports_each_mistake_at_its_exact_line(bins, workdir):
    files = {name: text for name, (text, _) in BROKEN.items()}
    files["bad.json"] = "{not json"
    directory = write_policies(os.path.join(workdir, "broken-tree"), files)
    result = mlcred(bins, "policy", "validate", directory)
    assert result.returncode == 1
    for _, expected in BROKEN.values():
        assert expected in result.err, f"missing {expected!r} in:\n{result.err}"
    assert "01-unknown-key.toml:1: duplicate role name 'a'" in result.err, "a duplicate is reported even in a file with other errors"
    report = json.loads(mlcred(bins, "policy", "validate", directory, "--json").out)
    assert report["ok"] is False and len(report["errors"]) >= len(BROKEN)
    assert {"file", "line", "column", "message"} <= set(report["errors"][0])
    good = write_policies(os.path.join(workdir, "good-tree"), GOOD)
    ok = mlcred(bins, "policy", "validate", good)
    assert ok.returncode == 0 and "5 roles valid" in ok.out


def test_validate_against_the_daemon_checks_secrets_exist_with_type_and_label(broker_factory, bins):
    d = broker_factory(GOOD)
    directory = d.policies
    d.cli("secret", "put", "tracking", "--type", "static", "--phi", input='{"k": "v"}', check=0)
    result = d.cli("policy", "validate", directory, "--against-daemon")
    assert result.returncode == 1
    assert "s3.toml:4: grant 'aws-main' names secret 'aws-main', which the daemon does not have" in result.err
    assert "train.toml:6: grant 'tracking' (jwt) needs a secret of type jwt-signer, but 'tracking' is of type static" in result.err
    assert "train.toml:6: grant 'tracking' uses phi-labelled secret 'tracking' in non-phi role 'train'" in result.err
    assert "phi.toml:5: grant 'tracking' uses phi-labelled" not in result.err


def test_policy_test_prints_counts_and_each_failure_with_its_case(bins, workdir):
    files = dict(GOOD)
    files["tests/cases.toml"] = (
        '[[case]]\nuser = "bob"\ngroups = ["mlcred-t-ml"]\nrole = "train"\nexpect = "allow"\n\n'
        '[[case]]\nuser = "bob"\ngroups = ["mlcred-t-ml"]\nrole = "phi-train"\nphi = false\nexpect = "deny"\n\n'
        '[[case]]\nuser = "eve"\ngroups = ["other"]\nrole = "train"\nexpect = "allow"\n')
    directory = write_policies(os.path.join(workdir, "tested"), files)
    result = mlcred(bins, "policy", "test", directory)
    assert result.returncode == 1
    assert result.out.strip().splitlines()[-1] == "2 passed, 1 failed"
    assert "tests/cases.toml:14: user eve (groups other) asking for 'train' in dev: expected allow, got deny" in result.out
    with open(os.path.join(directory, "tests/cases.toml"), "a") as f:
        f.write("")
    os.remove(os.path.join(directory, "tests/cases.toml"))
    with open(os.path.join(directory, "tests/ok.toml"), "w") as f:
        f.write('[[case]]\nuser = "bob"\ngroups = ["mlcred-t-ml"]\nrole = "prod-only"\nenvironment = "prod"\nexpect = "allow"\n')
    ok = mlcred(bins, "policy", "test", directory)
    assert ok.returncode == 0 and ok.out.strip() == "1 passed, 0 failed"


def test_the_example_policies_pass_their_own_tests(bins):
    repo = os.path.join(os.path.dirname(__file__), "..", "..")
    result = mlcred(bins, "policy", "test", os.path.join(repo, "policies"))
    assert result.returncode == 0, result.out + result.err
    assert result.out.strip().endswith("0 failed")


@pytest.mark.parametrize("user_key,role", [
    ("ml", "train"), ("ml", "alice-only"), ("ml", "prod-only"), ("ml", "phi-train"),
    ("nonadmin", "train"), ("nonadmin", "alice-only"), ("nonadmin", "phi-train"),
])
def test_explain_agrees_with_what_the_daemon_issues(broker_factory, bins, users, user_key, role):
    d = broker_factory(GOOD)
    directory = d.policies
    d.cli("secret", "generate", "tracking", "--type", "jwt-signer", check=0)
    user = users[user_key]
    offline = d.cli("policy", "explain", directory, "--role", role, "--user", user)
    online = d.cli("policy", "explain", "--role", role, "--user", user)
    issued = d.cli("run", "--role", role, "--", "true", user=user)
    assert offline.returncode in (0, 3) and online.returncode in (0, 3)
    assert (offline.returncode == 0) == (online.returncode == 0) == (issued.returncode == 0), (offline.out, online.out, issued.err)
    assert offline.out.splitlines()[0] in ("allow", "deny") and "  - " in offline.out
    # The --json form exits as the text form does (3 on deny) and says the same.
    as_json = d.cli("policy", "explain", directory, "--role", role, "--user", user, "--json")
    assert as_json.returncode == offline.returncode, (as_json.returncode, as_json.err)
    assert json.loads(as_json.out)["allowed"] == (offline.returncode == 0)


def git(repo, *args):
    subprocess.run(["git", "-C", repo, "-c", "user.email=t@t", "-c", "user.name=t", *args], check=True, capture_output=True)


def policy_repo(workdir, name):
    """A git repository under `workdir` whose first commit holds GOOD in policies/."""
    repo = os.path.join(workdir, name)
    write_policies(repo, GOOD)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "one")
    return repo


DIFF_CASES = [
    ("phi.toml", lambda t: t.replace('principals = ["group:mlcred-t-ml"]', 'principals = ["group:mlcred-t-ml", "user:dave"]'),
     "principal-added", "`user:dave` gains role 'phi-train' (phi role)"),
    ("aws/read.json", lambda t: t.replace('"s3:GetObject"', '["s3:GetObject", "s3:PutObject"]'),
     "grant-changed", "role 's3' grant 'aws-main': session policy changed (aws/read.json): review the document"),
    ("train.toml", lambda t: t.replace('max_ttl = "12h"', 'max_ttl = "24h"'),
     "max-ttl-raised", "role 'train' max_ttl raised from 12h to 1d"),
    ("alice.toml", lambda t: t.split("[[grant]]")[0],
     "grant-removed", "role 'alice-only' loses grant 'tracking'"),
]


@pytest.mark.parametrize("file,edit,kind,summary", DIFF_CASES, ids=[c[2] for c in DIFF_CASES])
def test_diff_reports_each_change_in_effective_access_once(bins, workdir, file, edit, kind, summary):
    old = write_policies(os.path.join(workdir, f"diff-old-{kind}"), GOOD)
    changed = dict(GOOD)
    changed[file] = edit(GOOD[file])
    new = write_policies(os.path.join(workdir, f"diff-new-{kind}"), changed)
    result = mlcred(bins, "policy", "diff", old, new, "--json")
    assert result.returncode == 0, result.err
    changes = json.loads(result.out)
    assert [(c["kind"], c["summary"]) for c in changes] == [(kind, summary)]
    markdown = mlcred(bins, "policy", "diff", old, new).out
    assert summary in markdown and markdown.count(summary) == 1


def test_diff_of_a_pure_reformatting_reports_no_change_also_between_git_revisions(bins, workdir):
    repo = policy_repo(workdir, "policy-repo")
    reformatted = {
        "policies/train.toml": '# Training\n[[grant]]\naudience   =  "mlflow"\ntype = "jwt"\nsecret = "tracking"  # the signer\n',
    }
    # Key order, whitespace, comments: rewrite train.toml with top-level keys after the grant table's own keys.
    text = ('max_ttl = "12h"\nttl = "1h"\nprincipals = [ "group:mlcred-t-ml" ]\nname="train"\n\n' + reformatted["policies/train.toml"])
    with open(os.path.join(repo, "policies/train.toml"), "w") as f:
        f.write(text)
    with open(os.path.join(repo, "policies/aws/read.json"), "w") as f:
        json.dump(json.loads(GOOD["aws/read.json"]), f, indent=4, sort_keys=True)
    git(repo, "commit", "-qam", "reformat")
    result = mlcred(bins, "policy", "diff", "HEAD~1", "HEAD", cwd=repo)
    assert result.returncode == 0, result.err
    assert "no change in effective access" in result.out
    assert json.loads(mlcred(bins, "policy", "diff", "HEAD~1:policies", "HEAD:policies", "--json", cwd=repo).out) == []
    assert mlcred(bins, "policy", "diff", "no-such-rev", "HEAD", cwd=repo).returncode == 1


def test_the_daemon_refuses_policy_files_others_can_write_or_own(daemon_factory, users):
    d = daemon_factory()
    directory = write_policies(d.root, GOOD)
    os.chmod(os.path.join(directory, "train.toml"), 0o664)
    d.start(wait=False, extra=["--policies", directory])
    assert d.proc.wait(timeout=15) == 1
    assert "train.toml:1: refused: writable by group or others" in d.read_log()
    os.chmod(os.path.join(directory, "train.toml"), 0o644)
    subprocess.run(["chown", users["nonadmin"], os.path.join(directory, "prod.toml")], check=True)
    d.start(wait=False, extra=["--policies", directory])
    assert d.proc.wait(timeout=15) == 1
    assert "prod.toml:1: refused: owned by uid" in d.read_log()
    subprocess.run(["chown", "root", os.path.join(directory, "prod.toml")], check=True)
    d.start(extra=["--policies", directory])
    loads = [r for r in d.audit() if r["action"] == "policy.load"]
    assert loads and "digest" in loads[-1]["reason"] and "loaded 5 roles" in loads[-1]["reason"]


def test_validate_judges_file_modes_as_the_daemon_does_but_not_owners(bins, workdir, users):
    """Issue 16 item 4: "valid" means the daemon loads it. Group or other write bits fail
    validation offline; an owner other than root (a reviewer's checkout) does not."""
    root = os.path.join(workdir, "modes")
    os.makedirs(root, exist_ok=True)
    directory = write_policies(root, {"train.toml": GOOD["train.toml"]})
    subprocess.run(["chown", "-R", users["nonadmin"], directory], check=True)
    assert mlcred(bins, "policy", "validate", directory).returncode == 0
    os.chmod(os.path.join(directory, "train.toml"), 0o664)
    result = mlcred(bins, "policy", "validate", directory)
    assert result.returncode == 1
    assert "train.toml:1: refused: writable by group or others (mode 664); run chmod go-w" in result.err, result.err
    os.chmod(os.path.join(directory, "train.toml"), 0o644)
    os.chmod(directory, 0o775)
    result = mlcred(bins, "policy", "validate", directory)
    assert result.returncode == 1 and "refused: writable by group or others (mode 775)" in result.err, result.err


def test_a_policy_test_naming_a_missing_role_is_an_error(bins, workdir):
    files = dict(GOOD)
    files["tests/typo.toml"] = '[[case]]\nuser = "bob"\nrole = "trian"\nexpect = "deny"\n'
    directory = write_policies(os.path.join(workdir, "typo-tests"), files)
    result = mlcred(bins, "policy", "test", directory)
    assert result.returncode == 1 and "tests/typo.toml:1: the case names role 'trian', which no policy defines" in result.err


def test_diff_of_git_revisions_leaves_no_temporary_checkout(bins, workdir):
    repo = policy_repo(workdir, "policy-repo-clean")
    before = set(os.listdir("/tmp"))
    assert mlcred(bins, "policy", "diff", "HEAD", "HEAD", cwd=repo).returncode == 0
    failed = mlcred(bins, "policy", "diff", "nope", "HEAD", cwd=repo)
    assert failed.returncode == 1 and len(failed.err.strip().splitlines()) == 1
    leftovers = [name for name in set(os.listdir("/tmp")) - before if name.startswith("mlcred-policy-diff-")]
    assert leftovers == []


def test_diagnostics_of_a_file_with_crlf_line_endings_name_the_right_line(bins, workdir):
    """Found by fuzzing: with CRLF endings every semantic diagnostic said line 1."""
    root = os.path.join(workdir, "crlf")
    os.makedirs(root, exist_ok=True)
    directory = write_policies(root, {"crlf.toml": 'name = "crlf"\r\nprincipals = ["uid:0"]\r\nttl = "soon"\r\n'})
    result = mlcred(bins, "policy", "validate", directory)
    assert result.returncode == 1
    assert "crlf.toml:3: bad duration for 'ttl'" in result.err, result.err
