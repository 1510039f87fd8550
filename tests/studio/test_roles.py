"""Roles through a live server with a users file: a labeler labels and looks, and cannot start,
stop or create anything through the Gradio API; an operator can. Votes carry the login name."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client

from backends.core.access.accounts import AccountError, Accounts, add_user, read_users, verify_password
from backends.core.spec.config import read_preset
from studio.logic import forms
from studio.logic.access import LABELER_OK, OPERATOR_ONLY
from tests.studio.conftest import ROOT, Server, free_port

LABELER = ("lena", "labeler-pass-1")
OPERATOR = ("olga", "operator-pass-1")


@pytest.fixture(scope="module")
def accounts_studio(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> Iterator[Server]:
    from studio.app import launch_app
    from studio.context import StudioContext

    tmp = tmp_path_factory.mktemp("roles")
    users = tmp / "users.txt"
    add_user(users, *LABELER[:1], "labeler", LABELER[1])
    add_user(users, *OPERATOR[:1], "operator", OPERATOR[1])
    ctx = StudioContext.create(
        tmp / "runs", ROOT / "presets", tmp / "data", accounts=Accounts(users), servers_folder=tmp / "servers"
    )
    ctx.store.create_session("s", [{"prompt": "p", "responses": ["a", "b"]}] * 3)
    (ctx.data_dir / "pairs.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    port = free_port()
    app = launch_app(ctx, "127.0.0.1", port, block=False)
    try:
        yield Server(f"http://127.0.0.1:{port}/", tmp / "runs", ctx)
    finally:
        ctx.stop_scheduler()
        app.close()


def tiny_values() -> list:
    return forms.form_values(read_preset(ROOT / "presets/tiny/sft.yaml"))


# Every operator-only endpoint, with arguments that would start or create something.
OPERATOR_CALLS = {
    "/launch": lambda: ("tiny/sft.yaml", "", *tiny_values()),
    "/stop": lambda: ("any-run",),
    "/rerun": lambda: ("any-run",),
    "/resume": lambda: ("any-run",),
    "/export": lambda: ("any-run",),
    "/monitor_rerun": lambda: ("any-run",),
    "/monitor_resume": lambda: ("any-run", ["any-run"]),
    "/arena_start": lambda: (
        ["builtin:tiny-llama", "builtin:smollm2-135m-instruct"],
        "builtin:tasks",
        "",
        3,
        8,
        0.5,
        ["checkers"],
        "",
        "",
    ),
    "/arena_to_label": lambda: ("any-run",),
    "/chat_to_label": lambda: ("s2", "builtin:tiny-llama", "builtin:tiny-llama", "", [], []),
    "/chat_stop": lambda: (),
    "/label_generate": lambda: ("builtin:tiny-llama", "", "builtin:tasks", 2, 2),
    "/label_train": lambda: ("majority", "tiny/dpo.yaml"),
    "/label_order": lambda: ("any-run",),
    "/data_mix": lambda: ("builtin:tasks:sft: 3\nbuiltin:tasks:sft: 2", "mix", 0),
    "/data_train": lambda: ("pairs.jsonl",),
    "/data_action": lambda: (
        "augment: synthetic preference pairs",
        "pairs.jsonl",
        "auto",
        "",
        "builtin:tiny-llama",
        "checkers",
        "",
        4,
        "",
    ),
}


def test_every_public_endpoint_is_classified(tmp_path: Path) -> None:
    """A new endpoint must be put in OPERATOR_ONLY or LABELER_OK (until then labelers are
    refused it); this lists the ones that are not."""
    from studio.app import build_app
    from studio.context import StudioContext

    ctx = StudioContext.create(tmp_path / "runs", ROOT / "presets", tmp_path / "data")
    app = build_app(ctx)
    public = {f.api_name for f in app.fns.values() if f.api_visibility == "public"}
    assert public - OPERATOR_ONLY - LABELER_OK == set()
    assert {name.lstrip("/") for name in OPERATOR_CALLS} == set(OPERATOR_ONLY)
    assert OPERATOR_ONLY.isdisjoint(LABELER_OK)


@pytest.mark.parametrize("api", sorted(OPERATOR_CALLS))
def test_a_labeler_cannot_start_stop_or_create_anything_through_the_api(accounts_studio, api: str) -> None:
    server = accounts_studio
    client = Client(server.url, auth=LABELER, verbose=False)
    client.predict(1, "", api_name="/label_session")  # a session is open: label_train has votes to use
    client.predict("", "", api_name="/label_vote_left")
    before = sorted(p.name for p in server.ctx.data_dir.rglob("*"))
    runs = sorted(p.name for p in server.runs_dir.iterdir())
    with pytest.raises(Exception, match="needs the operator role; lena is a labeler"):
        client.predict(*OPERATOR_CALLS[api](), api_name=api)
    assert sorted(p.name for p in server.runs_dir.iterdir()) == runs  # no run directory
    assert sorted(p.name for p in server.ctx.data_dir.rglob("*")) == before  # no file
    assert [s.name for s in server.ctx.store.sessions()] == ["s"]


def test_a_labeler_labels_under_the_login_name_and_sees_read_only_views(accounts_studio) -> None:
    server = accounts_studio
    client = Client(server.url, auth=LABELER, verbose=False)
    out = client.predict(1, "typed-name", api_name="/label_session")
    assert "**lena**" in out[0]
    client.predict("typed-name", "", api_name="/label_vote_right")
    votes = server.ctx.store.votes(1, "lena")
    assert votes and all(v.annotator == "lena" for v in votes)
    errors, yaml_text, command, _ = client.predict("tiny/sft.yaml", *tiny_values(), api_name="/preview")
    assert errors == "" and "--runs-dir" in command  # the form still previews: read-only, not hidden
    summary, *_ = client.predict("pairs.jsonl", "builtin:tiny-llama", 128, api_name="/data_open")
    assert "1 rows" in summary


def test_a_labeler_chats_only_with_a_server_an_operator_started(accounts_studio) -> None:
    server = accounts_studio
    client = Client(server.url, auth=LABELER, verbose=False)
    a, b, _, note = client.predict(
        "builtin:tiny-llama", "none", "", 16, 0.0, 1.0, 0, [], [], "hi", api_name="/chat_send"
    )
    assert "needs the operator role" in note and "builtin:tiny-llama" in note
    assert server.ctx.servers.servers() == []  # nothing was started
    assert not any(server.ctx.servers.folder.glob("*.log"))


def test_an_operator_launches_and_stops(accounts_studio) -> None:
    server = accounts_studio
    client = Client(server.url, auth=OPERATOR, verbose=False)
    msg, run_id, _, _ = client.predict("tiny/sft.yaml", "", *tiny_values(), api_name="/launch")
    assert run_id and run_id in msg and (server.runs_dir / run_id / "config.yaml").exists()
    client.predict(run_id, api_name="/stop")
    assert (server.runs_dir / run_id / "STOP").exists() or "stopped" in (
        server.runs_dir / run_id / "status.json"
    ).read_text()


def test_a_wrong_password_or_unknown_user_cannot_log_in(accounts_studio) -> None:
    for auth in ((LABELER[0], "wrong-password"), ("nobody", "whatever-pass")):
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises ValueError on a refused login
            Client(accounts_studio.url, auth=auth, verbose=False)


def test_users_file_holds_salted_hashes_only(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    assert add_user(users, "amy", "labeler", "first-secret") == "added"
    assert add_user(users, "bob", "labeler", "first-secret") == "added"
    assert add_user(users, "amy", "operator", "second-secret") == "updated"
    text = users.read_text()
    assert "secret" not in text and oct(users.stat().st_mode & 0o777) == "0o600"
    accounts = read_users(users)
    assert accounts["amy"].role == "operator" and accounts["bob"].role == "labeler"
    assert accounts["amy"].password_hash != accounts["bob"].password_hash  # salted
    assert verify_password("second-secret", accounts["amy"].password_hash)
    assert not verify_password("first-secret", accounts["amy"].password_hash)
    live = Accounts(users)
    assert live.verify("bob", "first-secret") and not live.verify("bob", "nope-nope")
    add_user(users, "cid", "labeler", "third-secret")  # added while the studio runs
    assert live.verify("cid", "third-secret") and live.role("cid") == "labeler"
    for name, role, pw in (
        ("a b", "labeler", "long-enough"),
        ("x", "admin", "long-enough"),
        ("x", "labeler", "short"),
    ):
        with pytest.raises(AccountError):
            add_user(users, name, role, pw)
    users.write_text("amy:secret\n")  # a plain --auth file given as --users
    with pytest.raises(AccountError, match="users.txt:1: expected name:role:scrypt"):
        read_users(users)


def test_add_user_command_and_share_needs_accounts(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    proc = subprocess.run(
        [sys.executable, "launch.py", "--add-user", "lena", "--role", "labeler", "--users", str(users)],
        cwd=ROOT,
        input="a-good-password\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "added lena (labeler)" in proc.stdout, proc.stderr
    assert Accounts(users).verify("lena", "a-good-password")
    proc = subprocess.run(
        [sys.executable, "launch.py", "--add-user", "x y", "--users", str(users)],
        cwd=ROOT,
        input="a-good-password\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "user name 'x y'" in proc.stderr and "nothing written" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "launch.py", "--share"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "--users FILE" in proc.stderr


def test_logins_are_throttled_and_logged_and_a_password_change_ends_sessions(accounts_studio, capfd) -> None:
    import time

    import httpx

    from backends.core.access.logins import FREE_FAILURES

    users, url = accounts_studio.ctx.accounts.path, accounts_studio.url
    add_user(users, "tom", "labeler", "tom-pass-1")

    def login(password: str) -> httpx.Response:
        return httpx.post(url + "login", data={"username": "tom", "password": password})

    first = login("tom-pass-1")
    assert first.status_code == 200
    cookie = {k: v for k, v in first.cookies.items() if k.startswith("access-token-unsecure")}
    check = lambda: httpx.get(url + "gradio_api/login_check", cookies=cookie).status_code  # noqa: E731
    assert check() == 200
    for _ in range(FREE_FAILURES):
        assert login("wrong-password").status_code == 400
    throttled = login("tom-pass-1")  # the right password, too soon after the failures
    assert throttled.status_code == 429 and "too many failed logins; try again in" in throttled.text
    log = capfd.readouterr().err
    assert f"login: failed for 'tom' from 127.0.0.1 ({FREE_FAILURES} for this name" in log
    assert "login: refused for 'tom' from 127.0.0.1: too many failures" in log
    time.sleep(2.2)  # the first lock is 2 s; a success then clears the name's and the address's counts
    assert login("tom-pass-1").status_code == 200
    # a changed password ends the sessions made with the old one
    add_user(users, "tom", "labeler", "tom-pass-2")
    deadline = time.time() + 15
    while check() == 200 and time.time() < deadline:
        time.sleep(0.5)
    assert check() == 401
    assert "login: ended" in capfd.readouterr().err


def test_an_address_trying_many_names_is_throttled_and_the_lock_grows() -> None:
    from backends.core.access.logins import CLIENT, FREE_FAILURES, LoginGuard, LoginThrottled

    now = [1000.0]
    lines: list[str] = []
    guard = LoginGuard(lambda name, pw: pw == "right", clock=lambda: now[0], log=lines.append)
    CLIENT.set("10.0.0.9")
    for i in range(FREE_FAILURES):
        assert guard.verify(f"user{i}", "wrong") is False
    with pytest.raises(LoginThrottled, match="try again in 2 s"):
        guard.verify("someone-else", "right")  # a new name, the same address
    CLIENT.set("10.0.0.10")
    assert guard.verify("someone-else", "right")  # another address is not locked
    CLIENT.set("10.0.0.9")
    now[0] += 2.5
    assert guard.verify("user0", "wrong") is False  # the sixth failure doubles the lock
    with pytest.raises(LoginThrottled, match="try again in 4 s"):
        guard.verify("user0", "right")
    assert sum("login: failed" in line for line in lines) == FREE_FAILURES + 1


def test_an_anonymous_visitor_gets_the_login_form_and_nothing_else(accounts_studio) -> None:
    import httpx

    url = accounts_studio.url
    anonymous = httpx.get(url)
    assert anonymous.status_code == 200 and '"auth_required":true' in anonymous.text
    assert "pairs.jsonl" not in anonymous.text  # a data-folder file the Data tab offers
    assert 'gradio_api_info = {"named_endpoints": {}' in anonymous.text
    login = httpx.post(url + "login", data={"username": LABELER[0], "password": LABELER[1]})
    cookie = {k: v for k, v in login.cookies.items() if k.startswith("access-token-unsecure")}
    page = httpx.get(url, cookies=cookie)
    assert '"auth_required":true' not in page.text and "pairs.jsonl" in page.text  # the same page, logged in
