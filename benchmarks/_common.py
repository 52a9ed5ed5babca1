"""What the benchmarks share: the servers under test, DCMTK clients, timing.

Every server is started fresh per run in its own temporary folder on random loopback ports, and
stopped by the benchmark, so a run leaves nothing behind and two runs never see each other's data.
DCMTK and Orthanc get ``TCP_NODELAY=1``: without it DCMTK leaves Nagle on, and every small object
would wait ~40 ms for a delayed ACK, which measures the kernel's timer, not the archive.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, chdir, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydicom import Dataset
from sqlalchemy import create_engine, text

from kaapana.config import Settings
from kaapana.testing.synthetic import GENERATOR_VERSION, write_datasets

BENCH_DIR = Path(__file__).resolve().parent
# The CLI of the environment that runs the benchmark, so a plain `python benchmarks/x.py` from
# the venv measures the kaapana installed there, whatever PATH says.
KAAPANA = Path(sys.executable).parent / "kaapana"
# Absolute paths: pynetdicom installs Python scripts called storescu/findscu/echoscu in the venv.
STORESCU = Path("/usr/bin/storescu")
FINDSCU = Path("/usr/bin/findscu")
ECHOSCU = Path("/usr/bin/echoscu")
ORTHANC = Path("/usr/sbin/Orthanc")
# Debian's orthanc-dicomweb; loaded only where a benchmark asks for DICOMweb.
ORTHANC_DICOMWEB = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
# The database the tests use; each run works in a schema of its own (see postgres_schema).
POSTGRES_URL = os.environ.get(
    "KAAPANA_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
HOST = "127.0.0.1"
KAAPANA_AE = "KAAPANA"
ORTHANC_AE = "ORTHANC"
BARE_AE = "BARE"
CALLING_AE = "BENCH"
SHARDS = 4
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
MB = 1_000_000


def default_cache_dir() -> Path:
    """Generated files outlive a run (the 512x512 series takes minutes to make) but not the
    machine, and must not land in the work tree; the generator version keeps stale data out."""
    return Path(tempfile.gettempdir()) / "kaapana-bench-cache" / f"v{GENERATOR_VERSION}"


def dcmtk_env() -> dict[str, str]:
    return {**os.environ, "TCP_NODELAY": "1"}


def kaapana_settings() -> Settings:
    """The settings `kaapana serve` will see: same environment, and read from an empty folder as
    the servers run in one, so the receiver count and PDU size reported are the ones used."""
    with tempfile.TemporaryDirectory() as empty, chdir(empty):
        return Settings()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _echo_ok(port: int, called_ae: str) -> bool:
    """Readiness by C-ECHO, not by a bare TCP connect: pynetdicom keeps a connection that never
    sends A-ASSOCIATE-RQ open until its ACSE timeout, which would stall the server's shutdown."""
    try:
        result = subprocess.run(
            [str(ECHOSCU), "-aet", CALLING_AE, "-aec", called_ae, HOST, str(port)],
            env=dcmtk_env(),
            capture_output=True,
            timeout=10,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready within {START_TIMEOUT:.0f} s")
        time.sleep(0.1)


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


class Server:
    """A server process in its own session and temp folder; the log stays there for post-mortems.

    Stopped with SIGINT (both kaapana and Orthanc shut down cleanly on it), killed with its
    process group only if it does not exit in time.
    """

    name = "server"
    ae_title = ""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"kaapana-bench-{self.name}-"))
        self.dicom_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> bool:
        return _echo_ok(self.dicom_port, self.ae_title)

    def instances(self) -> int:
        """How many instances the server holds now; the check that a timed run lost nothing."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        log = (self.workdir / "server.log").open("wb")
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            wait_until(self.ready, self.process, self.name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            print(f"{self.name} log kept in {self.workdir}", file=sys.stderr)


class Kaapana(Server):
    """`kaapana serve` with default settings apart from the ports and a fresh data dir; with
    ``database_url`` the index lives there (e.g. a schema from ``postgres_schema``) instead of
    the default SQLite file."""

    name = "kaapana"
    ae_title = KAAPANA_AE

    def __init__(self, database_url: str | None = None) -> None:
        super().__init__()
        self.data_dir = self.workdir / "data"
        self.http_port = free_port()
        self.database_url = database_url

    def command(self) -> list[str]:
        return [
            str(KAAPANA),
            "--data-dir",
            str(self.data_dir),
            "serve",
            "--dicom-port",
            str(self.dicom_port),
            "--http-port",
            str(self.http_port),
        ]

    def env(self) -> dict[str, str]:
        env = super().env()
        if self.database_url is not None:
            env["KAAPANA_DATABASE_URL"] = self.database_url
        return env

    def cli(self, *args: str, timeout: float = 1800.0) -> str:
        """Run `kaapana --data-dir D ARGS` against this server's data (and database); its
        stdout. Before the server starts, this also creates the data dir and the `admin` user."""
        with tempfile.TemporaryFile() as log:
            result = subprocess.run(
                [str(KAAPANA), "--data-dir", str(self.data_dir), *args],
                cwd=self.workdir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                timeout=timeout,
                check=False,
            )
            if result.returncode != 0:
                log.seek(0)
                output = log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"kaapana {args[0]} exited {result.returncode}: {output}")
        return result.stdout.decode()

    def admin_token(self) -> str:
        """A bearer token of `admin` that may write, valid for a day: DICOMweb needs one."""
        output = self.cli("tokens", "create", "admin", "--name", "bench", "--write", "--days", "1")
        return output.strip().splitlines()[-1]

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def ready(self) -> bool:
        return _http_ok(f"http://{HOST}:{self.http_port}/healthz") and super().ready()

    def instances(self) -> int:
        return count_kaapana_instances(self.data_dir, self.database_url)


def count_kaapana_instances(data_dir: Path, database_url: str | None = None) -> int:
    if database_url is not None:
        engine = create_engine(database_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM instances")).scalar_one())
        finally:
            engine.dispose()
    with sqlite3.connect(f"file:{data_dir / 'kaapana.db'}?mode=ro", uri=True) as db:
        count: int = db.execute("SELECT count(*) FROM instances").fetchone()[0]
    return count


@contextmanager
def postgres_schema(url: str = POSTGRES_URL) -> Iterator[str]:
    """A fresh schema in ``url``'s database, as the URL that makes it the search path; dropped
    on exit, with everything in it (like the tests' ``postgres_url`` fixture)."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    schema = f"kp_bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in url else "?"
        try:
            yield f"{url}{separator}options=-csearch_path%3D{schema}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


class Orthanc(Server):
    """Debian's Orthanc with its defaults, except what keeps it private and plugin-free; with
    ``dicomweb``, Debian's DICOMweb plugin is loaded and serves ``/dicom-web/`` (its defaults
    otherwise, no authentication: HTTP answers local clients only)."""

    name = "orthanc"
    ae_title = ORTHANC_AE

    def __init__(self, *, dicomweb: bool = False) -> None:
        super().__init__()
        self.http_port = free_port()
        config: dict[str, Any] = {
            "Name": "kaapana-bench",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "StorageCompression": False,
            "Plugins": [],
            "DicomWeb": {"Enable": False},
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": ORTHANC_AE,
            "DicomCheckCalledAet": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowFind": True,
        }
        if dicomweb:
            config["Plugins"] = [str(ORTHANC_DICOMWEB)]
            config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
        (self.workdir / "orthanc.json").write_text(json.dumps(config, indent=2))

    def command(self) -> list[str]:
        return [str(ORTHANC), str(self.workdir / "orthanc.json")]

    def env(self) -> dict[str, str]:
        # Orthanc's DICOM side is DCMTK: the same Nagle switch applies.
        return dcmtk_env()

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def ready(self) -> bool:
        return _http_ok(f"http://{HOST}:{self.http_port}/system") and super().ready()

    def instances(self) -> int:
        return int(http_json(f"http://{HOST}:{self.http_port}/statistics")["CountInstances"])


class BareReceiver(Server):
    """The floor: pynetdicom writing each received data set to a file and nothing else."""

    name = "bare"
    ae_title = BARE_AE

    def __init__(self, max_pdu_size: int) -> None:
        super().__init__()
        self.out_dir = self.workdir / "received"
        self.max_pdu_size = max_pdu_size

    def command(self) -> list[str]:
        return [
            sys.executable,
            str(BENCH_DIR / "bare_scp.py"),
            str(self.dicom_port),
            str(self.out_dir),
            str(self.max_pdu_size),
        ]

    def instances(self) -> int:
        return sum(1 for _ in self.out_dir.iterdir())


class BareStow(Server):
    """The floor of STOW-RS: HTTP in Python, each part written durably, nothing else."""

    name = "bare"

    def __init__(self, workers: int = 1) -> None:
        super().__init__()
        self.http_port = free_port()
        self.out_dir = self.workdir / "received"
        self.workers = workers

    def command(self) -> list[str]:
        return [
            sys.executable,
            str(BENCH_DIR / "bare_stow.py"),
            str(self.http_port),
            str(self.out_dir),
            str(self.workers),
        ]

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def ready(self) -> bool:
        try:
            with socket.create_connection((HOST, self.http_port), timeout=1):
                return True
        except OSError:
            return False

    def instances(self) -> int:
        return sum(1 for path in self.out_dir.iterdir() if path.suffix != ".tmp")


def wait_for_instances(server: Server, expected: int, timeout: float) -> float:
    """Seconds until ``server`` holds ``expected`` instances. A receiver may acknowledge an
    object once it is durable and index it a moment later, so the count is polled, and the lag
    is reported: what a query right after the send would miss."""
    start = time.perf_counter()
    while (held := server.instances()) != expected:
        if time.perf_counter() - start > timeout:
            raise RuntimeError(
                f"{server.name} holds {held} of {expected} sent instances after {timeout:.0f} s"
            )
        time.sleep(0.02)
    return time.perf_counter() - start


def storescu_command(port: int, called_ae: str, inputs: Sequence[Path]) -> list[str]:
    """Send every file under ``inputs`` over one association (folders are scanned recursively,
    which keeps thousands of paths off the command line)."""
    return [
        str(STORESCU),
        "-aet",
        CALLING_AE,
        "-aec",
        called_ae,
        "+sd",
        "+r",
        HOST,
        str(port),
        *map(str, inputs),
    ]


def run_clients(commands: Sequence[Sequence[str]], timeout: float) -> float:
    """Start all clients at once and return the seconds until the last one has exited; any
    failure raises, because a fast run that lost objects is not a result."""
    with ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in commands]
        start = time.perf_counter()
        processes = [
            subprocess.Popen(
                command,
                env=dcmtk_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for command, log in zip(commands, logs, strict=True)
        ]
        deadline = start + timeout
        try:
            for process in processes:
                process.wait(max(0.0, deadline - time.perf_counter()))
            elapsed = time.perf_counter() - start
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        failures = []
        for command, process, log in zip(commands, processes, logs, strict=True):
            if process.returncode != 0:
                log.seek(0)
                output = log.read().decode(errors="replace")[-2000:]
                failures.append(f"{command[0]} exited {process.returncode}: {output}")
    if failures:
        raise RuntimeError("\n".join(failures))
    return elapsed


@dataclass(frozen=True)
class FileSet:
    """Generated Part 10 files, split into ``SHARDS`` folders so parallel clients each send one."""

    name: str
    root: Path
    files: int
    bytes: int

    @property
    def shards(self) -> list[Path]:
        return sorted(self.root.glob("shard*"))


def cached_file_set(
    cache_dir: Path, name: str, make: Callable[[], Iterable[list[Dataset]]]
) -> FileSet:
    """Write ``make()``'s batches round-robin into shards once; later runs reuse the files.

    A marker written last tells a complete set from one whose generation was interrupted. The
    files are read once here, so every timed run starts from the same warm page cache.
    """
    root = cache_dir / name
    marker = cache_dir / f"{name}.complete"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        position = 0
        for batch in make():
            for shard in range(SHARDS):
                picked = batch[(shard - position) % SHARDS :: SHARDS]
                write_datasets(picked, root / f"shard{shard}")
            position += len(batch)
        marker.touch()
    files = [path for path in root.rglob("*") if path.is_file()]
    total = 0
    for path in files:
        total += len(path.read_bytes())
    return FileSet(name=name, root=root, files=len(files), bytes=total)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was actually measured, no interpolation."""
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out`` and ``--cache-dir``, which every benchmark takes."""
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help="where generated files are kept between runs",
    )


def latency_summary(samples: Sequence[float]) -> dict[str, float]:
    """p50, p95 and maximum of latencies in seconds, as milliseconds."""
    return {
        "p50_ms": round(percentile(samples, 0.50) * 1000, 2),
        "p95_ms": round(percentile(samples, 0.95) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@dataclass
class Report:
    """The JSON document both benchmarks print: environment, cases, ratios."""

    benchmark: str
    environment: dict[str, Any] = field(default_factory=dict)
    cases: list[dict[str, Any]] = field(default_factory=list)
    ratios: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def ratio(self, name: str, numerator: float, denominator: float, target: float | None) -> None:
        value = numerator / denominator if denominator else float("nan")
        entry: dict[str, Any] = {"value": round(value, 3)}
        if target is not None:
            entry["target"] = target
            entry["met"] = value >= target
        self.ratios[name] = entry

    def emit(self, out: Path | None) -> None:
        # Other work on the machine skews every figure; the load average makes that visible.
        self.environment["load_average_end"] = round(os.getloadavg()[0], 2)
        text = json.dumps(asdict(self), indent=2)
        print(text)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n")


def tool_versions() -> dict[str, str]:
    def first_line(command: list[str]) -> str:
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except OSError as exc:
            return f"unavailable ({exc})"
        lines = (result.stdout or result.stderr).strip().splitlines()
        return lines[0] if lines else ""

    settings = kaapana_settings()
    commit = first_line(["git", "-C", str(BENCH_DIR.parent), "rev-parse", "--short", "HEAD"])
    changed = first_line(["git", "-C", str(BENCH_DIR.parent), "status", "--porcelain", "src"])
    return {
        # Figures belong to a version of the code; an edited tree is flagged, not hidden.
        "kaapana_source": f"{commit} (uncommitted changes in src/)" if changed else commit,
        "load_average_start": str(round(os.getloadavg()[0], 2)),
        "python": sys.version.split()[0],
        "cpus": str(os.cpu_count()),
        "kaapana_receiver_processes": str(settings.dicom_workers or os.cpu_count() or 1),
        "kaapana_max_pdu_size": str(settings.max_pdu_size),
        "orthanc": first_line([str(ORTHANC), "--version"]),
        "dcmtk": first_line([str(STORESCU), "--version"]),
    }
