"""Admin checks use the kernel's view of the caller: uid, and groups from SO_PEERGROUPS."""
import grp
import json
import pwd
import subprocess

from conftest import as_user, cli_env

ADMIN_VERBS = [
    (["vault", "init", "--passphrase-stdin"], "x" * 12, "vault.init"),
    (["vault", "unseal", "--passphrase-stdin"], "x" * 12, "vault.unseal"),
    (["vault", "seal"], None, "vault.seal"),
    (["secret", "put", "s", "--type", "static"], '{"a": "b"}', "secret.put"),
    (["secret", "generate", "g", "--type", "jwt-signer"], None, "secret.generate"),
    (["secret", "list"], None, "secret.list"),
    (["secret", "rm", "s"], None, "secret.rm"),
    (["audit", "show"], None, "audit.show"),
    (["audit", "verify"], None, "audit.verify"),
    (["audit", "export"], None, "audit.show"),
]


def test_every_admin_verb_refuses_a_non_admin_with_exit_3_and_is_audited(daemon, users):
    user = users["nonadmin"]
    uid = pwd.getpwnam(user).pw_uid
    for args, stdin, _ in ADMIN_VERBS:
        result = daemon.cli(*args, input=stdin, user=user)
        assert result.returncode == 3, (args, result.returncode, result.err)
        assert result.err.startswith("mlcred: error: ") and "admin" in result.err
    # Nothing changed: the vault is still unsealed and holds nothing.
    assert json.loads(daemon.cli("status", "--json", check=0).out)["sealed"] is False
    assert json.loads(daemon.cli("secret", "list", "--json", check=0).out)["secrets"] == []
    records = daemon.audit(limit=100)
    refusals = [(r["action"], r["result"], r["reason"]) for r in records if r["principal"]["uid"] == uid]
    assert refusals == [(action, "denied", "not an admin") for _, _, action in ADMIN_VERBS]
    assert all(r["principal"]["user"] == user for r in records if r["principal"]["uid"] == uid)
    daemon.cli("audit", "verify", check=0)


def test_status_and_whoami_work_for_anyone_and_show_the_kernel_view(daemon, users):
    user = users["nonadmin"]
    daemon.cli("status", user=user, check=0)
    me = json.loads(daemon.cli("whoami", "--json", user=user, check=0).out)
    entry = pwd.getpwnam(user)
    assert (me["principal"]["uid"], me["principal"]["gid"], me["principal"]["user"]) == (entry.pw_uid, entry.pw_gid, user)
    assert me["admin"] is False and me["principal"]["pid"] > 1


def test_a_member_of_the_admin_group_is_an_admin(daemon, users):
    member = users["admin_group_member"]
    gid = grp.getgrnam(users["admin_group"]).gr_gid
    me = json.loads(daemon.cli("whoami", "--json", user=member, check=0).out)
    assert gid in me["principal"]["groups"] and users["admin_group"] in me["group_names"]
    assert me["admin"] is True
    daemon.cli("secret", "put", "by-ops", "--type", "static", input='{"k": "v"}', user=member, check=0)
    records = daemon.audit()
    assert records[-1]["action"] == "secret.put" and records[-1]["principal"]["user"] == member


def test_dropping_the_admin_group_before_connecting_loses_admin(daemon, users):
    """The group list is the one the kernel holds for the connection, not one the caller names."""
    member = users["admin_group_member"]
    result = subprocess.run(as_user(member, groups="--clear-groups") + [daemon.mlcred, "secret", "list"],
                            env=cli_env(daemon.socket), capture_output=True)
    assert result.returncode == 3, result.stderr
