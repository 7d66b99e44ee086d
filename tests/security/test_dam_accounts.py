"""Accounts under attack: the first-admin race, the last admin, sign-out of one session, login throttling
that tells nothing about which accounts exist, and password hashing that does not stall the event loop."""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from services.dam.core import security
from tests.dam.conftest import start_dam

PASSWORD = "correct horse battery"


@pytest.fixture
def fresh_dam(tmp_path, pg_server_uri, annotation_server):
    # Throttling loose enough that these tests' own wrong logins are not refused (one test tightens it).
    instance = start_dam(tmp_path, pg_server_uri, annotation_server.port, annotation_server.repository)
    yield instance
    instance.process.stop()


def _register_concurrently(dam, count: int) -> list[httpx.Response]:
    emails = [f"racer{i}@example.org" for i in range(count)]

    def register(email: str) -> httpx.Response:
        with dam.client() as client:
            return client.post("/api/auth/register", json={"email": email, "password": PASSWORD})

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(register, emails))


def test_concurrent_first_registrations_make_exactly_one_admin(fresh_dam):
    replies = _register_concurrently(fresh_dam, 8)
    assert [r.status_code for r in replies] == [201] * 8, [r.text for r in replies]
    roles = sorted(r.json()["role"] for r in replies)
    assert roles == ["admin"] + ["user"] * 7, roles
    # Later registrations are ordinary users too.
    with fresh_dam.client() as client:
        late = client.post("/api/auth/register", json={"email": "late@example.org", "password": PASSWORD})
    assert late.json()["role"] == "user"


def test_the_last_admin_cannot_be_demoted_or_deactivated(fresh_dam):
    admin = fresh_dam.user("boss@example.org")
    other = fresh_dam.user("second@example.org")
    me = admin.get("/api/users/me").json()
    assert me["role"] == "admin"
    for change in ({"role": "user"}, {"is_active": False}):
        reply = admin.patch(f"/api/users/{me['id']}", json=change)
        assert reply.status_code == 409, (change, reply.text)
        assert "last admin" in reply.json()["detail"]
    assert admin.get("/api/users/me").json()["role"] == "admin"
    # With a second admin, either may step down, but never both.
    other_id = other.get("/api/users/me").json()["id"]
    assert admin.patch(f"/api/users/{other_id}", json={"role": "admin"}).status_code == 200
    assert other.patch(f"/api/users/{me['id']}", json={"role": "user"}).status_code == 200
    assert other.patch(f"/api/users/{other_id}", json={"is_active": False}).status_code == 409
    # Concurrent demotions of two admins by each other leave one admin.
    assert other.patch(f"/api/users/{me['id']}", json={"role": "admin"}).status_code == 200
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda args: args[0].patch(f"/api/users/{args[1]}", json={"role": "user"}),
                                [(admin, other_id), (other, me["id"])]))
    assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
    survivor = admin if results[0].status_code == 200 else other  # the one whose demotion of the other held
    users = survivor.get("/api/users").json()
    assert sum(u["role"] == "admin" and u["is_active"] for u in users) == 1
    admin.close()
    other.close()


def _login(dam, email: str, password: str) -> httpx.Response:
    with dam.client() as client:
        return client.post("/api/auth/login", data={"username": email, "password": password})


def test_sign_out_ends_this_session_only(fresh_dam):
    fresh_dam.user("two.browsers@example.org").close()
    first = fresh_dam.client(_login(fresh_dam, "two.browsers@example.org", PASSWORD).json()["access_token"])
    second = fresh_dam.client(_login(fresh_dam, "two.browsers@example.org", PASSWORD).json()["access_token"])
    key = first.post("/api/users/me/api-keys", json={"name": "k"}).json()["key"]
    assert first.post("/api/auth/logout").status_code == 204
    assert first.get("/api/users/me").status_code == 401
    assert second.get("/api/users/me").status_code == 200
    with fresh_dam.client(key) as by_key:
        assert by_key.get("/api/users/me").status_code == 200  # API keys are not sessions
    first.close()
    second.close()


@pytest.fixture
def strict_dam(tmp_path, pg_server_uri, annotation_server):
    instance = start_dam(tmp_path, pg_server_uri, annotation_server.port, annotation_server.repository,
                         MAAM_DAM__LOGIN_ACCOUNT_FAILURES="3", MAAM_DAM__LOGIN_ADDRESS_FAILURES="8",
                         MAAM_DAM__LOGIN_WINDOW_S="600")
    yield instance
    instance.process.stop()


def test_login_is_throttled_per_account_without_revealing_which_accounts_exist(strict_dam):
    strict_dam.user("victim@example.org").close()
    statuses = {}
    for email in ("victim@example.org", "nobody@example.org"):
        replies = [_login(strict_dam, email, "wrong password!") for _ in range(4)]
        statuses[email] = [r.status_code for r in replies]
        locked = replies[-1]
        assert locked.status_code == 429, locked.text
        assert int(locked.headers["retry-after"]) > 0
        assert "too many" in locked.json()["detail"]
        # The seconds to wait may differ by one between the two; nothing else may.
        statuses[email + " body"] = (re.sub(r"\d+", "N", locked.json()["detail"]),
                                     sorted(k for k in locked.headers if k != "date"))
    # A known and an unknown account look the same, before and after the lockout.
    assert statuses["victim@example.org"] == statuses["nobody@example.org"] == [401, 401, 401, 429]
    assert statuses["victim@example.org body"][0] == statuses["nobody@example.org body"][0]
    assert statuses["victim@example.org body"][1] == statuses["nobody@example.org body"][1]
    # While locked, even the right password is refused (a guess that hits cannot be told apart).
    assert _login(strict_dam, "victim@example.org", PASSWORD).status_code == 429


def test_login_is_throttled_per_client_address(strict_dam):
    # 8 failures from one address over 8 different accounts: the address is refused, for any account.
    replies = [_login(strict_dam, f"spray{i}@example.org", "wrong password!") for i in range(9)]
    assert [r.status_code for r in replies] == [401] * 8 + [429]
    assert int(replies[-1].headers["retry-after"]) > 0
    assert _login(strict_dam, "spray-new@example.org", "wrong password!").status_code == 429


def test_concurrent_guesses_are_bounded_by_the_throttle(strict_dam):
    """Attempts in flight count: 40 parallel guesses at one account get at most its allowance of 401s."""
    strict_dam.user("target@example.org").close()
    with ThreadPoolExecutor(40) as pool:
        replies = list(pool.map(lambda _: _login(strict_dam, "target@example.org", "wrong password!"), range(40)))
    codes = [r.status_code for r in replies]
    assert codes.count(401) <= 3 and codes.count(429) >= 37, codes


async def test_password_hashing_leaves_the_event_loop_free():
    stored = await asyncio.to_thread(security.hash_password, PASSWORD)
    done = False
    ran_meanwhile = False

    async def verify() -> bool:
        nonlocal done
        ok = await security.verify_password_async("wrong password", stored)
        done = True
        return ok

    async def probe() -> None:
        nonlocal ran_meanwhile
        await asyncio.sleep(0)
        ran_meanwhile = not done

    started = time.perf_counter()
    ok, _ = await asyncio.gather(verify(), probe())
    assert not ok and time.perf_counter() - started > 0
    assert ran_meanwhile, "the event loop was blocked while scrypt ran"
    assert await security.verify_password_async(PASSWORD, stored)
