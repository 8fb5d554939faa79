"""A throwaway PostgreSQL server from Debian's packages, on a loopback port, in a
directory of the test's own. As root it runs as the `postgres` user (the server refuses
root). Each `database()` call makes a fresh database and returns its URL."""

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import stop_process


def bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


class Postgres:
    def __init__(self, port):
        self.bin = bin_dir()
        # Not under pytest's tmp dirs: those are private to root, and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="dfpg-"))
        self.port = port
        self.data = self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*self.as_user, self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync"],
                       check=True, capture_output=True, text=True, timeout=120)
        self.log = open(self.root / "postgres.log", "w")
        if os.geteuid() == 0:
            shutil.chown(self.root / "postgres.log", "postgres", "postgres")
        self.proc = subprocess.Popen([*self.as_user, self.bin / "postgres", "-D", self.data, "-p", str(port),
                                      "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
                                      "-c", "fsync=off"], stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if subprocess.run([self.bin / "pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True).returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "postgres.log").read_text()[-2000:])
            time.sleep(0.2)
        raise RuntimeError("PostgreSQL did not start")

    def database(self, name):
        subprocess.run([self.bin / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
                       check=True, capture_output=True, text=True, timeout=60)
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}?sslmode=disable"

    def stop(self):
        stop_process(self.proc, grace=20)
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)
