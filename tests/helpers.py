"""Test helpers: a private PostgreSQL cluster and a real stratus-identity process.

Everything started here is stopped by pid, and lives in a temporary directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "test-admin-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class SystemLibvirt:
    """The system libvirtd (with virtlogd) the libvirt tests share: started here, as
    MACHINE.md says (no systemd), only when nothing answers on qemu:///system.

    :meth:`stop` stops only a daemon this object started: it runs in the foreground as
    this object's child (its pid is the child's, never read from a pid file another
    daemon may have written), is checked to be that same process (its start time), and a
    libvirtd that still holds a domain (someone else's: the tests remove theirs first)
    is left running. A daemon someone else runs is never touched."""

    PIDFILES = {"virtlogd": Path("/run/virtlogd.pid"), "libvirtd": Path("/run/libvirtd.pid")}

    def __init__(self) -> None:
        self.started: list[tuple[subprocess.Popen[bytes], str]] = []  # (child, start time)
        self.left_running: list[int] = []

    @staticmethod
    def answers() -> bool:
        return subprocess.run(["virsh", "-c", "qemu:///system", "version"],
                              capture_output=True).returncode == 0

    def ensure(self, timeout: float = 30.0) -> None:
        if self.answers():
            return
        Path("/var/log/libvirt").mkdir(parents=True, exist_ok=True)
        for name, pidfile in self.PIDFILES.items():
            if _pid_alive(_read_pid(pidfile)):
                continue  # someone else's (perhaps still starting): never ours to stop
            child = subprocess.Popen([name], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
            time.sleep(0.5)
            if child.poll() is not None:
                continue  # another instance holds its pid file: that one is not ours
            self.started.append((child, _start_time(child.pid)))
        deadline = time.monotonic() + timeout
        while not self.answers():
            if time.monotonic() > deadline:
                raise TimeoutError("libvirtd did not answer on qemu:///system")
            time.sleep(0.2)

    @staticmethod
    def domains() -> list[str]:
        out = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
                             capture_output=True, text=True)
        return [line for line in out.stdout.split() if line.strip()]

    def stop(self) -> None:
        """Stop the daemons this object started (see the class), libvirtd first."""
        for child, started in reversed(self.started):
            if child.poll() is not None:
                continue
            if _start_time(child.pid) != started:
                continue  # not our process any more (cannot happen to an unreaped child)
            if child.args == ["libvirtd"] and self.domains():
                self.left_running.append(child.pid)  # someone uses it now: leave it
                continue
            if self.left_running:
                continue  # virtlogd serves the libvirtd left running
            child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.started.clear()


def _start_time(pid: int) -> str:
    """The process's start time (field 22 of /proc/<pid>/stat), '' when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[19]


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pg_bindir() -> Path | None:
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{cand}/postgres", os.X_OK) and os.access(f"{cand}/initdb", os.X_OK):
            return Path(cand)
    return None


@dataclass
class Postgres:
    """A throw-away PostgreSQL cluster owned by the tests."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def _as_postgres(self, *cmd: str) -> list[str]:
        return list(cmd) if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *cmd]

    def init(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.bindir = bindir
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # postgres must be able to reach the cluster: open the path, own the leaf.
            for parent in [self.root.parent, *self.root.parent.parents]:
                if parent == Path("/tmp") or parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o711)
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            self._as_postgres(
                str(bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                "--auth=trust", "--no-sync", "-E", "UTF8",
            ),
            check=True, capture_output=True,
        )

    def start(self) -> None:
        log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 - closed with the process
        # Started directly as the postgres user (not through runuser) so that
        # self.proc.pid is the postmaster itself and stop() really stops it.
        self.proc = subprocess.Popen(
            [
                str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port),
                "-k", str(self.root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                "-c", "max_connections=200",
            ],
            stdout=log, stderr=subprocess.STDOUT,
            user="postgres" if os.geteuid() == 0 else None,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ok = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ok.returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "postgres.log").read_text()[-2000:])
            time.sleep(0.2)
        raise TimeoutError("PostgreSQL did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def psql(self, sql: str) -> None:
        subprocess.run(
            [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
             "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
            check=True, capture_output=True,
        )

    def create_database(self, name: str) -> str:
        self.psql(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


@dataclass
class IdentityServer:
    """stratus-identity in its own process, with its own config, keys and database."""

    root: Path
    database_url: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "STRATUS_CONFIG_FILE": str(self.root / "stratus.conf"),
            "STRATUS_IDENTITY__DATABASE_URL": self.database_url,
            "STRATUS_IDENTITY__FERNET_KEY_REPOSITORY": str(self.root / "fernet-keys"),
            "STRATUS_IDENTITY__BIND_HOST": "127.0.0.1",
            "STRATUS_IDENTITY__BIND_PORT": str(self.port),
            "STRATUS_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD,
            **self.extra_env,
        })
        return env

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "stratus-manage"), *args], env=self.env,
                              capture_output=True, text=True, check=True)

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        self.manage("db", "sync", "identity")
        self.manage("fernet-setup")
        self.manage("bootstrap", "--public-url", self.url)

    def start(self) -> None:
        log = open(self.root / "identity.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(BIN / "stratus-identity")], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/v3", proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def log(self) -> str:
        return (self.root / "identity.log").read_text(errors="replace")

    def clouds_yaml(self) -> Path:
        path = self.root / "clouds.yaml"
        path.write_text(
            "clouds:\n  stratus:\n    auth:\n"
            f"      auth_url: {self.url}/v3\n      username: admin\n"
            f"      password: {ADMIN_PASSWORD}\n      project_name: admin\n"
            "      user_domain_name: Default\n      project_domain_name: Default\n"
            "    region_name: RegionOne\n    identity_api_version: 3\n"
        )
        return path

    def token(self, user: str = "admin", password: str = ADMIN_PASSWORD,
              project: str | None = "admin") -> str:
        return password_token(self.url, user, password, project)

    def member_token(self, name: str) -> str:
        """A new project and a new user ``name`` with the member role on it: that
        user's project-scoped token."""
        admin = {"X-Auth-Token": self.token()}
        with httpx.Client(base_url=f"{self.url}/v3", headers=admin, timeout=30) as c:
            project = c.post("/projects", json={"project": {"name": name,
                                                            "domain_id": "default"}})
            assert project.status_code == 201, project.text
            pid = project.json()["project"]["id"]
            password = uuid.uuid4().hex
            user = c.post("/users", json={"user": {"name": name, "password": password,
                                                   "domain_id": "default"}})
            assert user.status_code == 201, user.text
            uid = user.json()["user"]["id"]
            roles = c.get("/roles", params={"name": "member"}).json()["roles"]
            resp = c.put(f"/projects/{pid}/users/{uid}/roles/{roles[0]['id']}")
            assert resp.status_code == 204, resp.text
        return password_token(self.url, name, password, name)


def password_token(url: str, user: str, password: str, project: str | None = None,
                   client: httpx.Client | None = None) -> str:
    body: dict = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}}
    if project:
        body["auth"]["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    resp = (client or httpx).post(f"{url}/v3/auth/tokens", json=body)  # type: ignore[attr-defined]
    assert resp.status_code == 201, resp.text
    return str(resp.headers["X-Subject-Token"])


@dataclass
class ImageServer:
    """stratus-image in its own process, with its own config, store and database.

    It validates tokens against ``identity`` and registers its endpoint in that
    identity's catalog, so python-openstackclient finds it.
    """

    root: Path
    identity: IdentityServer
    database_url: str = ""
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "STRATUS_CONFIG_FILE": str(self.root / "stratus.conf"),
            "STRATUS_IMAGE__DATABASE_URL": self.database_url
            or f"sqlite:///{self.root}/image.sqlite",
            "STRATUS_IMAGE__IMAGES_DIR": str(self.images_dir),
            "STRATUS_IMAGE__BIND_HOST": "127.0.0.1",
            "STRATUS_IMAGE__BIND_PORT": str(self.port),
            "STRATUS_IMAGE__IDENTITY_URL": f"{self.identity.url}/v3",
            **self.extra_env,
        })
        return env

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        subprocess.run([str(BIN / "stratus-manage"), "db", "sync", "image"], env=self.env,
                       capture_output=True, text=True, check=True)
        self.identity.manage("catalog", "ensure", "--type", "image", "--name", "glance",
                             "--public-url", self.url, "--internal-url", self.url)

    def start(self) -> None:
        log = open(self.root / "image.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(BIN / "stratus-image")], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/healthcheck", proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def kill(self) -> None:
        """SIGKILL, by pid: the process gets no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        return (self.root / "image.log").read_text(errors="replace")


@dataclass
class ComputeServer:
    """stratus-compute in its own process, with a real identity (and the image and network
    APIs at ``image_url``/``network_url``), its service user ``stratus-compute``."""

    root: Path
    identity: IdentityServer
    image_url: str
    network_url: str
    database_url: str = ""
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    service_password: str = "compute-service-secret"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "STRATUS_CONFIG_FILE": str(self.root / "stratus.conf"),
            "STRATUS_COMPUTE__DATABASE_URL": self.database_url
            or f"sqlite:///{self.root}/compute.sqlite",
            "STRATUS_COMPUTE__BIND_HOST": "127.0.0.1",
            "STRATUS_COMPUTE__BIND_PORT": str(self.port),
            "STRATUS_COMPUTE__IDENTITY_URL": f"{self.identity.url}/v3",
            "STRATUS_COMPUTE__IMAGE_URL": self.image_url,
            "STRATUS_COMPUTE__NETWORK_URL": self.network_url,
            "STRATUS_COMPUTE__USERNAME": "stratus-compute",
            "STRATUS_COMPUTE__PASSWORD": self.service_password,
            "STRATUS_COMPUTE__PROJECT_NAME": "service",
            **self.extra_env,
        })
        return env

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "stratus.conf").write_text("[DEFAULT]\ndebug = false\n")
        subprocess.run([str(BIN / "stratus-manage"), "db", "sync", "compute"], env=self.env,
                       capture_output=True, text=True, check=True)
        subprocess.run([str(BIN / "stratus-manage"), "service-user", "ensure", "--name",
                        "stratus-compute"],
                       env={**self.identity.env, "STRATUS_SERVICE_PASSWORD":
                            self.service_password},
                       capture_output=True, text=True, check=True)
        self.identity.manage("catalog", "ensure", "--type", "compute", "--name", "nova",
                             "--public-url", f"{self.url}/v2.1",
                             "--internal-url", f"{self.url}/v2.1")

    def start(self) -> None:
        log = open(self.root / "compute.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(BIN / "stratus-compute")], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/healthcheck", proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def log(self) -> str:
        return (self.root / "compute.log").read_text(errors="replace")
