"""People and access as an operator and a browser meet them: the CLI's exact shapes, the
first admin's one-time password, signing in over real HTTP."""
import os
import re
import subprocess

import requests

from conftest import BINARY, cli, psql




def test_first_start_prints_the_admins_one_time_password_once(empty_database, start_server):
    server = start_server({"DATABASE_URL": empty_database, "HANDRAIL_BCRYPT_COST": "4"})
    server.wait_ready()
    code, out, err = server.stop()
    assert code == 0
    match = re.search(r"one-time password: (\S+)", out)
    assert match, out
    password = match.group(1)
    assert password not in err, "the one-time password reached the log"
    assert password not in psql(empty_database, "SELECT string_agg(t::text, ' ') FROM users t")
    # A second start finds the admin and prints nothing.
    again = start_server({"DATABASE_URL": empty_database, "HANDRAIL_BCRYPT_COST": "4"})
    again.wait_ready()
    _, out2, _ = again.stop()
    assert "one-time password" not in out2

    # The password works once, and must be replaced first.
    server = start_server({"DATABASE_URL": empty_database, "HANDRAIL_BCRYPT_COST": "4"})
    server.wait_ready()
    browser = requests.Session()
    page = browser.get(server.url + "/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    signed_in = browser.post(server.url + "/login", data={"username": "admin", "password": password, "csrf_token": token},
                             allow_redirects=False)
    assert signed_in.status_code == 303
    assert signed_in.headers["Location"] == "/account/password"
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert browser.get(server.url + "/", allow_redirects=False).headers["Location"] == "/account/password"
    server.stop()


def test_cli_creates_people_tokens_and_keys_printing_only_the_secret(empty_database, start_server):
    created = cli(["users", "create", "--username", "ada", "--role", "lead"], empty_database)
    assert created.returncode == 0, created.stderr
    assert re.fullmatch(r"[A-Za-z0-9]{20}\n", created.stdout), repr(created.stdout)
    chosen = cli(["users", "create", "--username", "bob", "--role", "admin", "--password-stdin"], empty_database,
                 stdin="a password bob chose\n")
    assert chosen.returncode == 0 and chosen.stdout == ""
    token = cli(["tokens", "create", "--user", "bob", "--name", "deploy"], empty_database)
    assert re.fullmatch(r"hr_[A-Za-z0-9]{40}\n", token.stdout), repr(token.stdout)
    key = cli(["integrations", "create", "--name", "prod-am", "--kind", "alertmanager"], empty_database)
    assert re.fullmatch(r"[a-z0-9]{32}\n", key.stdout), repr(key.stdout)
    token, key = token.stdout.strip(), key.stdout.strip()

    listing = cli(["users", "list"], empty_database).stdout
    assert "ada\tlead\tactive" in listing and "bob\tadmin\tactive" in listing
    assert token not in cli(["tokens", "list"], empty_database).stdout
    assert key not in cli(["integrations", "list"], empty_database).stdout

    # Bad input: one line naming the field, non-zero exit, nothing created.
    for args, field in [(["users", "create", "--username", "Not Valid", "--role", "lead"], "username"),
                        (["users", "create", "--username", "cy", "--role", "boss"], "role"),
                        (["users", "create", "--username", "ada", "--role", "lead"], "username"),
                        (["integrations", "create", "--name", "x", "--kind", "nagios"], "kind"),
                        (["users", "set-role", "--username", "nobody", "--role", "lead"], "username")]:
        bad = cli(args, empty_database)
        assert bad.returncode != 0, args
        assert bad.stderr.startswith(f"handrail: {field}:"), (args, bad.stderr)
        assert len(bad.stderr.strip().splitlines()) == 1

    # The token works against the live server until it is revoked.
    server = start_server({"DATABASE_URL": empty_database, "HANDRAIL_BCRYPT_COST": "4"})
    server.wait_ready()
    auth = {"Authorization": f"Bearer {token}"}
    me = requests.get(server.url + "/api/v1/me", headers=auth)
    assert me.status_code == 200 and me.json()["username"] == "bob"
    assert requests.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 403
    token_id = cli(["tokens", "list", "--user", "bob"], empty_database).stdout.split("\t")[0]
    assert cli(["tokens", "revoke", "--id", token_id], empty_database).returncode == 0
    assert requests.get(server.url + "/api/v1/me", headers=auth).status_code == 401
    # Disabling ends a person's access at once.
    ada_token = cli(["tokens", "create", "--user", "ada", "--name", "t"], empty_database).stdout.strip()
    assert requests.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {ada_token}"}).status_code == 200
    assert cli(["users", "disable", "--username", "ada"], empty_database).returncode == 0
    assert requests.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {ada_token}"}).status_code == 401
    code, _, err = server.stop()
    for secret in [token, key, ada_token, "a password bob chose"]:
        assert secret not in err

    audit = psql(empty_database, "SELECT string_agg(action, ',' ORDER BY id) FROM audit_log")
    assert audit.startswith("user.created,user.created,token.created,integration.created")
    assert "token.revoked" in audit and "user.disabled" in audit
    assert psql(empty_database, "SELECT count(*) FROM audit_log WHERE actor LIKE 'cli:%'") != "0"
