"""Admin API bodies go through the product's one strict JSON parser: `NaN`, `Infinity` and
`-Infinity` are not JSON, and every admin route that takes a body refuses them with a 400 in
the OpenAI envelope, changing nothing."""

from __future__ import annotations

import pytest

CONSTANTS = ("NaN", "Infinity", "-Infinity")


def _routes(admin_client) -> list[tuple[str, str, str]]:
    """(method, path, body template) for every admin route that takes a body; `{}` is where
    the constant goes. The key and the team they change exist."""
    key = admin_client.post("/admin/keys", json={"name": "target"}).get_json()["id"]
    assert admin_client.post("/admin/teams", json={"name": "blue"}).status_code == 201
    return [
        ("post", "/admin/keys", '{{"name": "new", "budget_usd": {}}}'),
        ("patch", f"/admin/keys/{key}", '{{"budget_usd": {}}}'),
        ("post", "/admin/teams", '{{"name": "green", "budget_usd": {}}}'),
        ("patch", "/admin/teams/blue", '{{"rpm": 5, "budget_usd": {}}}'),
    ]


@pytest.mark.parametrize("constant", CONSTANTS)
def test_admin_bodies_refuse_non_json_numbers(admin_client, constant):
    for method, path, template in _routes(admin_client):
        resp = getattr(admin_client, method)(
            path, data=template.format(constant), content_type="application/json"
        )
        assert resp.status_code == 400, (method, path, resp.get_data(as_text=True))
        error = resp.get_json()["error"]
        assert error["type"] == "invalid_request_error"
        assert "JSON" in error["message"]
    keys = admin_client.get("/admin/keys").get_json()["data"]
    assert [(k["name"], k["budget_usd"]) for k in keys] == [("target", None)]
    teams = admin_client.get("/admin/teams").get_json()["data"]
    assert [(t["name"], t["rpm"], t["budget_usd"]) for t in teams] == [("blue", None, None)]


def test_the_same_bodies_with_numbers_are_taken(admin_client):
    for method, path, template in _routes(admin_client):
        resp = getattr(admin_client, method)(
            path, data=template.format("2.5"), content_type="application/json"
        )
        assert resp.status_code in (200, 201), (method, path, resp.get_data(as_text=True))
        assert resp.get_json()["budget_usd"] == 2.5
