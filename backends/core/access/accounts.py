"""Studio accounts: a users file of `name:role:hash` lines with salted scrypt password hashes,
and the two roles.

    labeler    the Label tab; Data, Monitor and Arena read-only
    operator   everything: launch, stop, compare, generate candidates, build mixtures

`python launch.py --add-user NAME --role labeler --users users.txt` adds (or updates) one;
the studio re-reads the file when it changes, so a user added while it runs can log in.
Standard library only: the launcher imports this before anything heavy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Role = Literal["labeler", "operator"]
ROLES: tuple[Role, ...] = ("labeler", "operator")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# scrypt at n=2**14, r=8 (16 MiB, ~50 ms a login): OWASP's floor for interactive logins.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class AccountError(ValueError):
    """A malformed users file or an invalid name, role or password; names file and line."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
        )
    except ValueError:  # a malformed hash never verifies
        return False
    return hmac.compare_digest(got, want)


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    password_hash: str


def check_name_and_role(name: str, role: str) -> None:
    if not NAME.match(name):
        raise AccountError(
            f"user name {name!r}: use letters, digits and . _ @ - (up to 64), starting with a letter or digit"
        )
    if role not in ROLES:
        raise AccountError(f"role {role!r}: expected one of {', '.join(ROLES)}")


def read_users(path: Path) -> dict[str, Account]:
    """The accounts of a users file; AccountError names the file and line of a bad entry."""
    out: dict[str, Account] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3 or not parts[2].startswith("scrypt$"):
            raise AccountError(
                f"{path}:{n}: expected name:role:scrypt$... (written by `launch.py --add-user`), "
                f"got {line[:40]!r}"
            )
        name, role, hashed = parts
        try:
            check_name_and_role(name, role)
        except AccountError as e:
            raise AccountError(f"{path}:{n}: {e}") from None
        out[name] = Account(name, role, hashed)  # type: ignore[arg-type]
    return out


def add_user(path: Path, name: str, role: str, password: str) -> str:
    """Add or update `name` in the users file (created 0600); return "added" or "updated"."""
    check_name_and_role(name, role)
    if len(password) < 8:
        raise AccountError("a password needs at least 8 characters")
    users = read_users(path) if path.exists() else {}
    verb = "updated" if name in users else "added"
    users[name] = Account(name, role, hash_password(password))  # type: ignore[arg-type]
    text = "# Alignment Studio accounts: name:role:password hash (launch.py --add-user)\n" + "".join(
        f"{a.name}:{a.role}:{a.password_hash}\n" for a in users.values()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return verb


class Accounts:
    """Who may log in, and with which role: a users file (re-read when it changes) plus
    plain `--auth user:password` pairs, which are operators."""

    def __init__(self, path: Path | None = None, plain: list[tuple[str, str]] | None = None) -> None:
        self.path = path
        self._plain = {u: Account(u, "operator", hash_password(p)) for u, p in plain or []}
        self._file: dict[str, Account] = {}
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        # called with the names whose password or role changed (or who were removed), so
        # their sessions end (studio/app.py forgets their login tokens)
        self.listeners: list[Callable[[set[str]], None]] = []
        self._reload()

    def _reload(self) -> None:
        if self.path is None:
            return
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            old, (self._file, self._stamp) = self._file, (read_users(self.path), stamp)
            changed = {n for n in old if old[n] != self._file.get(n)}
            if changed:
                for listener in self.listeners:
                    listener(changed)

    def accounts(self) -> dict[str, Account]:
        with self._lock:
            try:
                self._reload()
            except (OSError, AccountError) as e:
                # A file broken while the studio runs keeps the last good accounts; say so.
                print(f"accounts: keeping the previous users ({e})", flush=True)
            return {**self._file, **self._plain}

    def __len__(self) -> int:
        return len(self.accounts())

    def verify(self, username: str, password: str) -> bool:
        """Gradio's login check."""
        account = self.accounts().get(username)
        if account is None:
            hash_password(password)  # the same work for unknown names: no timing oracle
            return False
        return verify_password(password, account.password_hash)

    def role(self, username: str | None) -> Role | None:
        account = self.accounts().get(username or "")
        return account.role if account else None


def read_password(name: str) -> str:
    """Twice from a terminal (not echoed), or one line from stdin (scripts)."""
    import sys

    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != first:
            raise SystemExit("error: the passwords differ; nothing written")
        return first
    return sys.stdin.readline().rstrip("\n")


def add_user_command(users: Path | None, name: str, role: str) -> int:
    """`launch.py --add-user NAME --role R --users FILE`: the exit code, the outcome printed."""
    import sys

    if users is None:
        print("error: --add-user needs --users FILE (the accounts file to write)", file=sys.stderr)
        return 2
    try:
        verb = add_user(users, name, role, read_password(name))  # type: ignore[arg-type]
    except AccountError as e:
        print(f"error: {e}; nothing written", file=sys.stderr)
        return 2
    print(f"{verb} {name} ({role}) in {users}")
    return 0
