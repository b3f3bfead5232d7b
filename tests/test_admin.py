"""The admin API (docs/admin.md) and the admin event log, in-process, plus the CLI's key
commands."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask.testing import FlaskCliRunner

from tests.conftest import ADMIN_KEY
from tests.helpers import openai_sdk, post_chat


def events(admin_client: Any, **query: str) -> list[dict[str, Any]]:
    resp = admin_client.get("/admin/events", query_string=query)
    assert resp.status_code == 200
    return resp.get_json()["data"]


def test_admin_api_is_closed_without_an_admin_key(client):
    resp = client.get("/admin/keys", headers={"Authorization": "Bearer anything"})
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "admin_api_closed"


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-key", f"Basic {ADMIN_KEY}", f"Bearer {ADMIN_KEY}x"]
)
def test_admin_api_refuses_missing_or_wrong_keys(admin_app, header):
    headers = {"Authorization": header} if header else {}
    for method, path in (("get", "/admin/keys"), ("post", "/admin/keys"),
                         ("delete", "/admin/keys/x"), ("get", "/admin/events")):  # fmt: skip
        resp = getattr(admin_app.test_client(), method)(path, headers=headers, json={})
        assert resp.status_code == 401, (method, path)
        assert resp.get_json()["error"]["type"] == "authentication_error"
    assert admin_app.extensions["switchboard"].keys.list() == []


def test_client_keys_are_not_admin_keys(admin_app, make_key):
    secret = make_key("someone")
    resp = admin_app.test_client().get("/admin/keys", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 401


def test_create_key_returns_the_secret_once_and_it_works(admin_client, admin_app):
    resp = admin_client.post(
        "/admin/keys",
        json={"name": "ci-bot", "user": "ci", "team": "platform", "models": ["gpt-4o-mini"],
              "rpm": 60, "tpm": 10000, "budget_usd": 25.5, "expires_at": "2030-01-31"},
        headers={"X-Switchboard-Actor": "alice@example.com"},
        environ_base={"REMOTE_ADDR": "10.9.8.7"},
    )  # fmt: skip
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["key"].startswith("sb-") and len(body["key"]) >= 35
    assert (body["name"], body["user"], body["team"]) == ("ci-bot", "ci", "platform")
    assert (body["models"], body["rpm"], body["tpm"], body["budget_usd"]) == (
        ["gpt-4o-mini"], 60, 10000, 25.5,
    )  # fmt: skip
    assert body["expires_at"] == "2030-01-31T00:00:00Z"
    models = admin_app.test_client().get(
        "/v1/models", headers={"Authorization": f"Bearer {body['key']}"}
    )
    assert [m["id"] for m in models.get_json()["data"]] == ["gpt-4o-mini"]
    listed = admin_client.get("/admin/keys").get_json()["data"]
    assert [k["name"] for k in listed] == ["ci-bot"] and "key" not in listed[0]
    assert body["key"] not in json.dumps(listed)
    [event] = events(admin_client)
    assert (event["action"], event["target_id"], event["target_name"]) == (
        "key.created", body["id"], "ci-bot",
    )  # fmt: skip
    assert (event["actor"], event["source"]) == ("admin-api:alice@example.com", "10.9.8.7")
    assert event["details"]["rpm"] == 60 and body["key"] not in json.dumps(event)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "rpm": "60"}, "rpm"),
        ({"name": "x", "rpm": 0}, "rpm"),
        ({"name": "x", "budget_usd": -1}, "budget_usd"),
        ({"name": "x", "models": "gpt-4o"}, "models"),
        ({"name": "x", "expires_at": "next week"}, "expires_at"),
        ({"name": "x", "admin": True}, "admin"),
        # Rates are Integer columns, 32 bits in PostgreSQL: larger is refused, never a 500.
        ({"name": "x", "rpm": 2**31}, "rpm"),
        ({"name": "x", "tpm": 169981085788120846767751168}, "tpm"),
    ],
)
def test_create_key_validation(admin_client, body, param):
    resp = admin_client.post("/admin/keys", json=body)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["param"] == param
    assert events(admin_client) == []


def test_the_largest_rate_is_stored_and_a_budget_beyond_a_float_refused(admin_client):
    top = 2**31 - 1
    created = admin_client.post("/admin/keys", json={"name": "top", "rpm": top, "tpm": top})
    assert created.status_code == 201, created.get_json()
    assert admin_client.get(f"/admin/keys/{created.get_json()['id']}").get_json()["rpm"] == top
    # 1e400 parses as infinity: no JSON can carry it back out.
    huge = admin_client.post("/admin/keys", data='{"name": "inf", "budget_usd": 1e400}',
                             content_type="application/json")  # fmt: skip
    assert huge.status_code == 400 and huge.get_json()["error"]["param"] == "budget_usd"
    team = admin_client.post("/admin/teams", json={"name": "wide", "tpm": 2**40})
    assert team.status_code == 400 and team.get_json()["error"]["param"] == "tpm"


def test_duplicate_name_is_a_conflict(admin_client):
    assert admin_client.post("/admin/keys", json={"name": "twice"}).status_code == 201
    resp = admin_client.post("/admin/keys", json={"name": "twice"})
    assert resp.status_code == 409 and resp.get_json()["error"]["param"] == "name"


def test_get_update_and_revoke_a_key(admin_client, admin_app):
    created = admin_client.post("/admin/keys", json={"name": "laptop", "rpm": 10}).get_json()
    key_id, secret = created["id"], created["key"]
    assert admin_client.get(f"/admin/keys/{key_id}").get_json()["rpm"] == 10
    assert admin_client.get("/admin/keys/key_nope").status_code == 404

    patched = admin_client.patch(f"/admin/keys/{key_id}", json={"rpm": None, "team": "blue",
                                                          "models": ["gpt-4o"]})  # fmt: skip
    assert patched.status_code == 200
    assert (patched.get_json()["rpm"], patched.get_json()["team"]) == (None, "blue")
    assert admin_client.patch(f"/admin/keys/{key_id}", json={"secret": "x"}).status_code == 400
    assert admin_client.patch("/admin/keys/key_nope", json={"rpm": 5}).status_code == 404

    user = {"Authorization": f"Bearer {secret}"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    chat = post_chat(admin_app, user, **body)
    assert chat.status_code == 403  # the new allowlist holds at once in this process

    revoked = admin_client.delete(f"/admin/keys/{key_id}")
    assert revoked.status_code == 200 and revoked.get_json()["revoked"] is True
    assert admin_app.test_client().get("/v1/models", headers=user).status_code == 401
    assert admin_client.delete("/admin/keys/key_nope").status_code == 404

    log = events(admin_client, key=key_id)
    assert [e["action"] for e in log] == ["key.revoked", "key.updated", "key.created"]
    assert log[1]["details"] == {
        "models": [[], ["gpt-4o"]],
        "rpm": [10, None],
        "team": [None, "blue"],
    }


def test_cli_actions_are_in_the_admin_log(admin_app, admin_client):
    runner: FlaskCliRunner = admin_app.test_cli_runner()
    from switchboard.cli.main import cli

    created = runner.invoke(cli, ["keys", "create", "--name", "cli-key", "--rpm", "5"])
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    updated = runner.invoke(cli, ["keys", "update", "cli-key", "--rpm", "none", "--tpm", "900",
                                  "--name", "cli-key-2", "--json"])  # fmt: skip
    assert updated.exit_code == 0, updated.output
    row = json.loads(updated.output)
    assert (row["name"], row["rpm"], row["tpm"]) == ("cli-key-2", None, 900)
    bad = runner.invoke(cli, ["keys", "update", "cli-key-2", "--rpm", "0"])
    assert bad.exit_code != 0 and "at least 1" in bad.output
    nothing = runner.invoke(cli, ["keys", "update", "cli-key-2"])
    assert nothing.exit_code != 0
    assert runner.invoke(cli, ["keys", "revoke", "cli-key-2"]).exit_code == 0
    log = runner.invoke(cli, ["admin-log", "--json"])
    assert log.exit_code == 0
    entries = json.loads(log.output)
    assert [e["action"] for e in entries] == ["key.revoked", "key.updated", "key.created"]
    assert all(e["actor"].startswith("cli:") and e["source"] for e in entries)
    assert entries[1]["details"]["name"] == ["cli-key", "cli-key-2"]
    assert secret not in log.output
    table = runner.invoke(cli, ["admin-log"])
    assert "key.updated" in table.output and "cli-key-2" in table.output
    # The same log through the API.
    assert [e["action"] for e in events(admin_client)] == [e["action"] for e in entries]


@pytest.mark.integration
def test_admin_api_under_gunicorn_with_the_sdk(upstream, databases, tmp_path):
    import openai
    import requests

    from tests.conftest import start_server, stop_server

    srv = start_server(
        tmp_path,
        upstream.base_url,
        databases.fresh("admin"),
        extra_env={"SWITCHBOARD_ADMIN_KEY": ADMIN_KEY},
    )
    api = requests.Session()
    try:
        base = srv.base_url + "/admin"
        assert api.get(base + "/keys", timeout=10).status_code == 401
        api.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        created = api.post(base + "/keys", json={"name": "sdk-user"}, timeout=10)
        assert created.status_code == 201
        secret, key_id = created.json()["key"], created.json()["id"]
        client = openai_sdk(srv.base_url + "/v1", secret, spread=True)
        assert client.models.list().data
        assert api.delete(f"{base}/keys/{key_id}", timeout=10).json()["revoked"] is True
        time.sleep(2.2)  # the documented bound: 2 s of per-worker key cache
        for _ in range(4):  # both workers
            with pytest.raises(openai.AuthenticationError):
                client.models.list()
        client.close()
        actions = [e["action"] for e in api.get(base + "/events", timeout=10).json()["data"]]
        assert actions == ["key.revoked", "key.created"]
        assert ADMIN_KEY not in srv.log() and secret not in srv.log()
    finally:
        api.close()
        stop_server(srv)


def test_teams_through_the_admin_api(admin_client):
    created = admin_client.post("/admin/teams", json={"name": "blue", "rpm": 30, "budget_usd": 50,
                                               "budget_period": "monthly"})  # fmt: skip
    assert created.status_code == 201
    assert created.get_json()["budget_period"] == "monthly"
    assert admin_client.post("/admin/teams", json={"name": "blue"}).status_code == 409
    bad = admin_client.post("/admin/teams", json={"name": "x", "budget_period": "weekly"})
    assert bad.status_code == 400 and bad.get_json()["error"]["param"] == "budget_period"
    patched = admin_client.patch("/admin/teams/blue", json={"rpm": None, "tpm": 1000})
    assert (patched.get_json()["rpm"], patched.get_json()["tpm"]) == (None, 1000)
    assert admin_client.get("/admin/teams/blue").get_json()["tpm"] == 1000
    assert admin_client.get("/admin/teams/nope").status_code == 404
    assert [t["name"] for t in admin_client.get("/admin/teams").get_json()["data"]] == ["blue"]
    log = events(admin_client)
    assert [e["action"] for e in log] == ["team.updated", "team.created"]
    assert log[0]["details"] == {"rpm": [30, None], "tpm": [None, 1000]}
