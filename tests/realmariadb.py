"""A throwaway MariaDB server with server_audit, and a workload whose answer is known in advance.

``Server`` initialises a data dir with ``mariadb-install-db`` in a temp dir and runs ``mariadbd``
on 127.0.0.1 and a free port with the audit plugin logging CONNECT, QUERY and TABLE events to a
file. As root, the server runs as the ``mysql`` OS user (``runuser``). The superuser sets the
database up over the socket; ``WORKLOAD`` steps run over TCP as three roles, one connection each,
through the ``mariadb`` command-line client.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SETUP = """
CREATE DATABASE shop;
CREATE TABLE shop.customers (id INT PRIMARY KEY, email VARCHAR(80));
CREATE TABLE shop.orders (id INT PRIMARY KEY, customer_id INT, amount DECIMAL(8,2));
INSERT INTO shop.customers VALUES (1, 'a@example.com'), (2, 'b@example.com');
INSERT INTO shop.orders VALUES (1, 1, 10.00), (2, 2, 20.00);
CREATE USER 'alice'@'%' IDENTIFIED BY 'alice-pw';
CREATE USER 'bob'@'%' IDENTIFIED BY 'bob-pw';
CREATE USER 'carol'@'%' IDENTIFIED BY 'carol-pw';
GRANT SELECT ON shop.* TO 'alice'@'%';
GRANT SELECT, INSERT, UPDATE ON shop.orders TO 'bob'@'%';
GRANT ALL ON shop.* TO 'carol'@'%';
"""
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}


@dataclass(frozen=True)
class Step:
    """One statement run by ``user`` in database shop, and the access it must produce."""

    user: str
    sql: str
    access: frozenset[tuple[str, str]]  # (object, access kind)
    ok: bool = True


WORKLOAD = [
    Step("alice", "SELECT id, email FROM customers WHERE id = 1",
         frozenset({("shop.customers", "read")})),
    Step("alice", "SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id",
         frozenset({("shop.orders", "read"), ("shop.customers", "read")})),
    Step("bob", "INSERT INTO orders (id, customer_id, amount) VALUES (10, 1, 5.00)",
         frozenset({("shop.orders", "write")})),
    Step("bob", "UPDATE orders SET amount = 7 WHERE id = 10",
         frozenset({("shop.orders", "write")})),
    Step("carol", "CREATE TABLE notes (id INT PRIMARY KEY, note TEXT)",
         frozenset({("shop.notes", "schema")})),
    Step("carol", "ALTER TABLE notes ADD COLUMN author VARCHAR(20)",
         frozenset({("shop.notes", "schema")})),
    Step("carol", "DROP TABLE notes", frozenset({("shop.notes", "schema")})),
    # denied by privileges (1142): the server opens no table, only the QUERY event says it
    Step("alice", "DELETE FROM orders WHERE id = 10", frozenset({("orders", "write")}), ok=False),
]


def in_ci() -> bool:
    """True under CI (``CI=true``): a missing server is then a failure, never a skip."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def find_server() -> tuple[Path | None, str]:
    """The ``mariadbd`` binary, or why there is none."""
    for name in ("mariadbd", "mysqld"):
        for candidate in (shutil.which(name), f"/usr/sbin/{name}"):
            if candidate and Path(candidate).exists():
                missing = [t for t in ("mariadb-install-db", "mariadb") if not shutil.which(t)]
                if missing:
                    return None, f"{', '.join(missing)} not found (apt install mariadb-client)"
                return Path(candidate), ""
    return None, "no mariadbd (run .ci/install-mariadb or apt install mariadb-server)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A throwaway MariaDB server; ``stop()`` (idempotent) kills it and removes its files."""

    def __init__(self, mariadbd: Path):
        self.mariadbd = mariadbd
        self.dir = Path(tempfile.mkdtemp(prefix="auditkit-mariadb-"))
        self.port = _free_port()
        self.socket = self.dir / "mysqld.sock"
        self.audit_log = self.dir / "server_audit.log"
        self.process: subprocess.Popen | None = None
        self.as_root = os.geteuid() == 0

    def _as_server_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "mysql", "--", *argv] if self.as_root else argv

    def start(self) -> None:
        if self.as_root:
            entry = pwd.getpwnam("mysql")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            self._as_server_user([
                "mariadb-install-db", "--no-defaults", f"--datadir={self.dir / 'data'}",
                "--auth-root-authentication-method=normal", "--skip-test-db",
            ]),
            check=True, capture_output=True, timeout=180,
        )
        self.process = subprocess.Popen(
            self._as_server_user([
                str(self.mariadbd), "--no-defaults", f"--datadir={self.dir / 'data'}",
                f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.socket}",
                f"--pid-file={self.dir / 'mysqld.pid'}", f"--log-error={self.dir / 'error.log'}",
                "--skip-name-resolve", "--plugin-load-add=server_audit",
                "--server-audit-logging=ON", "--server-audit-events=CONNECT,QUERY,TABLE",
                f"--server-audit-file-path={self.audit_log}",
            ]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not self.socket.exists() or not self._accepts():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "error.log")
                detail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"mariadbd did not start:\n{detail}")
            time.sleep(0.2)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def admin(self, sql: str) -> None:
        """Run SQL as the superuser over the socket."""
        subprocess.run(["mariadb", "--no-defaults", f"--socket={self.socket}", "-u", "root",
                        "-e", sql], check=True, capture_output=True, text=True, timeout=60)

    def run_as(self, user: str, password: str, sql: str, database: str = "shop") -> bool:
        """Run SQL as ``user`` over TCP (one connection); True when it succeeded."""
        done = subprocess.run(
            ["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", str(self.port), "-u", user,
             f"-p{password}", database, "-e", sql],
            capture_output=True, text=True, timeout=60,
        )
        return done.returncode == 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)


def run_workload(server: Server) -> list[bool]:
    """Set up the database, play ``WORKLOAD`` and a failed login; each step's success."""
    server.admin(SETUP)
    results = [server.run_as(s.user, PASSWORDS[s.user], s.sql) for s in WORKLOAD]
    results.append(server.run_as("alice", "wrong-password", "SELECT 1"))
    return results
