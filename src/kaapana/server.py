"""``kaapana serve``: the DICOM receiver processes, the HTTP server and the series monitor.

The main process migrates the index, runs HTTP, the series monitor and the journal indexer, and
supervises N receiver processes that accept from the DICOM port's listening socket, which the
main process holds; a receiver that dies is started again.
Ctrl-C or SIGTERM stops accepting, lets open associations finish, flushes pending index writes.
With ``dicom_workers = 1`` the receiver runs inside the main process.
"""

import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable
from functools import partial
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

import uvicorn

from kaapana.api import create_app
from kaapana.archive import SeriesQuietMonitor
from kaapana.asgi import ZeroCopyHttpToolsProtocol
from kaapana.config import Settings
from kaapana.dimse.scp import AcceptBalance, start_scp
from kaapana.platform import Platform

log = logging.getLogger(__name__)
GRACE_SECONDS = 30.0
RECEIVER_START_SECONDS = 120.0


def receiver_count(settings: Settings) -> int:
    return settings.dicom_workers or os.cpu_count() or 1


def _receiver_main(
    settings: Settings, ready: ProcessEvent, listener: socket.socket, counts: Any, index: int
) -> None:
    """Entry point of one receiver process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(processName)s %(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with Platform(settings, migrate=False) as platform:
        server = start_scp(
            platform,
            host=settings.host,
            port=settings.dicom_port,
            listener=listener,
            balance=AcceptBalance(counts, index),
        )
        ready.set()
        while not stop.wait(0.5):
            pass
        server.shutdown()
        server.wait_idle(GRACE_SECONDS)


def _listen(settings: Settings) -> tuple[Settings, socket.socket]:
    """The DICOM port's listening socket, shared by the receivers; picks the port if it is 0."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    listener = socket.create_server(
        (settings.host, settings.dicom_port), family=family, backlog=128
    )
    return settings.with_overrides(dicom_port=listener.getsockname()[1]), listener


class ReceiverPool:
    """Starts, supervises and stops the receiver processes."""

    def __init__(self, settings: Settings, count: int, listener: socket.socket) -> None:
        self.settings = settings
        self._count = count
        self._listener = listener
        self._context = multiprocessing.get_context("spawn")
        self._counts = self._context.Array("i", count)  # associations per receiver
        self._processes: list[SpawnProcess] = []
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)

    def _launch(self, index: int) -> tuple[SpawnProcess, ProcessEvent]:
        self._counts[index] = 0  # a dead receiver's associations died with it
        ready = self._context.Event()
        process = self._context.Process(
            target=_receiver_main,
            args=(self.settings, ready, self._listener, self._counts, index),
            name="kaapana-dicom",
            daemon=False,
        )
        process.start()
        return process, ready

    def _spawn(self, index: int) -> SpawnProcess:
        process, ready = self._launch(index)
        _await_ready(ready)
        return process

    def start(self) -> None:
        """Start every receiver at once (each takes seconds to import), then wait for all."""
        launched = [self._launch(index) for index in range(self._count)]
        for _process, ready in launched:
            _await_ready(ready)
        self._processes = [process for process, _ready in launched]
        self._supervisor.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            for index, process in enumerate(self._processes):
                if not process.is_alive() and not self._stopping.is_set():
                    log.error(
                        "receiver %d exited with %s; restarting", process.pid, process.exitcode
                    )
                    self._processes[index] = self._spawn(index)

    def stop(self) -> None:
        self._stopping.set()
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(GRACE_SECONDS + 10)
            if process.is_alive():
                process.kill()


def _await_ready(ready: ProcessEvent) -> None:
    if not ready.wait(RECEIVER_START_SECONDS):
        raise RuntimeError(
            f"a DICOM receiver process did not start within {RECEIVER_START_SECONDS:.0f} s"
        )


ReadyCallback = Callable[[Settings, str | None], None]


class _Terminated(Exception):
    """SIGTERM arrived: stop as after Ctrl-C."""


def _terminate(_signum: int, _frame: object) -> None:
    # uvicorn takes SIGTERM over while it serves, shuts HTTP down and raises the signal again
    # once it is done; without a handler of ours that second one would end the process on the
    # spot, leaving the receivers running and the pending index writes unwritten. Later
    # SIGTERMs must not cut the shutdown short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Terminated


def serve(settings: Settings, *, on_ready: ReadyCallback | None = None) -> None:
    """Run until interrupted.

    ``on_ready`` gets the effective settings once both servers listen, and on the very first
    start the generated password of the ``admin`` user (else None).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        _serve(settings, on_ready)
    except _Terminated:
        log.info("stopped on SIGTERM")


def _serve(settings: Settings, on_ready: ReadyCallback | None) -> None:
    with Platform(settings) as platform:
        monitor = SeriesQuietMonitor(
            platform.engine, platform.events, quiet_seconds=settings.series_quiet_seconds
        )
        monitor.start()
        # Resumes interrupted runs; the Dask cluster itself starts with the first task.
        platform.workflows.start()
        # Federated runs (their central runs are scheduled above), the poller of an orchestrator.
        platform.federation.serve()
        count = receiver_count(settings)
        pool: ReceiverPool | None = None
        in_process = None
        listener = None
        try:
            if count == 1:
                in_process = start_scp(platform, host=settings.host, port=settings.dicom_port)
                settings = settings.with_overrides(dicom_port=in_process.server_address[1])
            else:
                settings, listener = _listen(settings)
                # The receivers journal what they acknowledge; this process indexes it, also
                # what a receiver that died left behind.
                platform.archive.index_journals()
                pool = ReceiverPool(settings, count, listener)
                pool.start()
            config = uvicorn.Config(
                create_app(settings, platform=platform),
                host=settings.host,
                port=settings.http_port,
                log_level="warning",
                lifespan="on",
                http=ZeroCopyHttpToolsProtocol,
                ssl_certfile=settings.tls_certfile,
                ssl_keyfile=settings.tls_keyfile,
            )
            http = uvicorn.Server(config)
            if on_ready is not None:
                threading.Thread(
                    target=_notify_when_started,
                    args=(
                        http,
                        settings,
                        partial(on_ready, password=platform.initial_admin_password),
                    ),
                    daemon=True,
                ).start()
            http.run()
        finally:
            if in_process is not None:
                in_process.shutdown()
                in_process.wait_idle(GRACE_SECONDS)
            if pool is not None:
                pool.stop()
            if listener is not None:
                listener.close()
            monitor.stop()
            platform.archive.flush()
            log.info("stopped: open associations finished, pending index writes committed")


def _notify_when_started(
    http: uvicorn.Server, settings: Settings, on_ready: Callable[[Settings], None]
) -> None:
    while not http.started:
        if http.should_exit:
            return
        threading.Event().wait(0.05)
    port = http.servers[0].sockets[0].getsockname()[1] if http.servers else settings.http_port
    on_ready(settings.with_overrides(http_port=port))


__all__ = ["ReadyCallback", "ReceiverPool", "receiver_count", "serve"]
