"""The worker side: run one task attempt in its own process group, and stop it for real.

``execute`` is what the executor ships to a Dask worker. It forks (Python operators) or spawns
(command and container operators) a child that leads a new session, sends its stdout and stderr
(and the operator's logger) to the task log, and watches it: when the step's timeout passes or the
scheduler drops a cancel marker into the attempt folder, the whole process group is killed. The
child also gets SIGKILL when the worker process dies (``PR_SET_PDEATHSIG``), so a lost worker
leaves no operator running. The outcome goes back to the scheduler, which owns every state.
"""

import contextlib
import ctypes
import ctypes.util
import functools
import json
import os
import pickle
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

import cloudpickle

from kaapana.errors import KaapanaError
from kaapana.workflows.context import BATCH_NAME, CANCEL_FILE, TaskContext
from kaapana.workflows.definitions import (
    CommandOperator,
    ContainerOperator,
    PythonOperator,
    Resources,
    Step,
)

_PR_SET_PDEATHSIG = 1
_KILL_GRACE = 2.0
_WATCH_INTERVAL = 0.05
TASK_NICENESS = 10
"""Workflow tasks run below the interactive services: thousands of queued series-media runs after
a bulk import must not make C-FIND, STOW-RS or the UI wait for the CPU."""
CONTAINER_WORKFLOW_DIR = "/data"
ERROR_FILE = "error.txt"
"""Where a Python operator's exception message goes (the control folder), for the task's error."""
OUTCOME_FILE = "outcome.json"
"""The attempt's ``TaskOutcome`` (the control folder), which the scheduler reads."""
ATTEMPT_FILE = "attempt.pickle"
"""The attempt's context and step (the control folder), which the Dask task loads."""


class EndValues(StrEnum):
    succeeded = "succeeded"
    failed = "failed"
    timeout = "timeout"
    canceled = "canceled"


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    end: EndValues
    exit_code: int | None
    host: str
    started: float
    finished: float
    error: str = ""


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up once per process (``find_library`` runs a subprocess)."""
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    return ctypes.CDLL(name, use_errno=True).prctl if name else None


def _die_with_parent() -> None:
    """In the child: be killed when the worker that watches us dies (Linux only)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@functools.cache
def _setpriv() -> str | None:
    return shutil.which("setpriv") if sys.platform.startswith("linux") else None


def _orphan_guard(
    command: list[str], env: dict[str, str]
) -> tuple[list[str], Callable[[], None] | None]:
    """The command as started so that it dies with its worker, and the ``preexec_fn`` for it.

    util-linux's ``setpriv --pdeathsig`` sets the signal and execs the command; a Python
    ``preexec_fn`` would do the same but forbids ``vfork``, and a worker's full fork of itself
    cost ~4 ms per command. The ``preexec_fn`` remains for a command not found on PATH (Popen
    then says so) and where there is no setpriv."""
    setpriv = _setpriv()
    if setpriv is None or shutil.which(command[0], path=env.get("PATH")) is None:
        return command, _die_with_parent
    return [setpriv, "--pdeathsig", "KILL", "--", *command], None


def contract_env(ctx: TaskContext, *, workflow_dir: str | None = None) -> dict[str, str]:
    """Kaapana's processing-container variables, and each parameter in upper case."""
    env = {
        "WORKFLOW_DIR": workflow_dir or str(ctx.workflow_dir),
        "BATCH_NAME": BATCH_NAME,
        "OPERATOR_IN_DIR": ctx.input_step,
        "OPERATOR_OUT_DIR": ctx.step,
        "RUN_ID": str(ctx.run_id),
        "DAG_ID": ctx.workflow,
        "TASK_ID": ctx.step,
    }
    for name, value in ctx.params.items():
        env[name.upper()] = value if isinstance(value, str) else _json_text(value)
    return env


def _json_text(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool | int | float) else str(value).lower()


def prepare_outputs(ctx: TaskContext) -> None:
    """A fresh output folder: Dask may run the same attempt again after losing a worker."""
    if ctx.output_dir.exists():
        shutil.rmtree(ctx.output_dir)
    ctx.output_dir.mkdir(parents=True)
    ctx.control_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("results.jsonl", "progress.json", ERROR_FILE, OUTCOME_FILE):
        (ctx.control_dir / stale).unlink(missing_ok=True)


def execute(ctx: TaskContext, step: Step) -> TaskOutcome:
    """Run one attempt of ``step`` to its end; never raises for the operator's failures.

    The outcome is also written to the attempt's control folder, on the shared work path: the
    scheduler reads it there instead of fetching the result through Dask, a round trip that
    cost as much as the rest of a short task's bookkeeping."""
    outcome = _execute(ctx, step)
    temp = ctx.control_dir / f"{OUTCOME_FILE}.tmp"
    temp.write_text(json.dumps(asdict(outcome)))
    temp.replace(ctx.control_dir / OUTCOME_FILE)
    return outcome


def write_attempt(ctx: TaskContext, step: Step) -> Path:
    """The attempt's context and step, pickled into its control folder for ``run_attempt``.

    Dask gets the path, not the objects: its scheduler unpickles every task it is given and
    pickles it again for the worker, twice the cost of the context for nothing it reads.
    cloudpickle, as Dask would use, so that an operator of a plugin file travels too."""
    path = ctx.control_dir / ATTEMPT_FILE
    temp = path.with_name(f"{ATTEMPT_FILE}.tmp")
    # Owner only: a service task's context holds the installation's settings (database URL).
    with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        file.write(cloudpickle.dumps((ctx, step)))
    temp.replace(path)
    return path


def run_attempt(path: str) -> TaskOutcome:
    """The Dask task: ``execute`` of the attempt ``write_attempt`` wrote."""
    _yield_cpu()
    ctx, step = pickle.loads(Path(path).read_bytes())
    return execute(ctx, step)


def _yield_cpu() -> None:
    """Lower this worker thread (and what it starts) to ``TASK_NICENESS``, once."""
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, 0) < TASK_NICENESS:
            os.setpriority(os.PRIO_PROCESS, 0, TASK_NICENESS)


def read_outcome(ctx: TaskContext) -> TaskOutcome | None:
    """The outcome ``execute`` wrote for this attempt, if it got that far."""
    try:
        fields = json.loads((ctx.control_dir / OUTCOME_FILE).read_text())
    except (OSError, ValueError):
        return None
    return TaskOutcome(**{**fields, "end": EndValues(fields["end"])})


def _execute(ctx: TaskContext, step: Step) -> TaskOutcome:
    operator, timeout = step.operator, step.timeout
    host = f"{socket.gethostname()}:{os.getpid()}"
    started = time.time()
    if (ctx.control_dir / CANCEL_FILE).exists():  # canceled while it waited for a worker
        return TaskOutcome(EndValues.canceled, None, host, started, time.time(), "canceled")
    prepare_outputs(ctx)
    ctx.log_path.parent.mkdir(parents=True, exist_ok=True)
    with ctx.log_path.open("ab") as log:
        if isinstance(operator, PythonOperator):
            pid = _fork_python(ctx, operator, log.fileno())
            wait = _waitpid(pid)
            kill_extra: Callable[[], None] | None = None
        else:
            command, env, kill_extra = _command(ctx, operator, step.resources, container_engine())
            env = {**os.environ, **env}
            launched, preexec = _orphan_guard(command, env)
            try:
                process = subprocess.Popen(
                    launched,
                    env=env,
                    cwd=ctx.workflow_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=preexec,
                )
            except OSError as exc:
                log.write(f"cannot start {command[0]!r}: {exc}\n".encode())
                return TaskOutcome(EndValues.failed, None, host, started, time.time(), str(exc))
            pid = process.pid
            wait = process.poll
        end, code = _watch(ctx, pid, wait, timeout, kill_extra)
        if end is EndValues.timeout:
            log.write(f"\nkaapana: timeout after {timeout} s, process group killed\n".encode())
        elif end is EndValues.canceled:
            log.write(b"\nkaapana: canceled, process group killed\n")
        elif end is EndValues.failed:
            log.write(f"\nkaapana: exit code {code}\n".encode())
    error = {
        EndValues.succeeded: "",
        EndValues.failed: _operator_error(ctx) or f"exit code {code}",
        EndValues.timeout: f"timeout after {timeout} s",
        EndValues.canceled: "canceled",
    }[end]
    return TaskOutcome(end, code, host, started, time.time(), error)


def _fork_python(ctx: TaskContext, operator: PythonOperator, log_fd: int) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    _prctl()  # looked up here, once: in the child every task would search for libc again
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()
        _die_with_parent()
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        os.chdir(ctx.workflow_dir)
        operator.func(ctx)
        code = 0
    except BaseException as exc:
        traceback.print_exc()
        # The task's error: a platform error's own message (it names the field or the value),
        # otherwise the exception's type and message; the traceback stays in the log.
        detail = exc.detail if isinstance(exc, KaapanaError) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            (ctx.control_dir / ERROR_FILE).write_text(detail[:4000])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _operator_error(ctx: TaskContext) -> str:
    try:
        return (ctx.control_dir / ERROR_FILE).read_text().strip()
    except OSError:
        return ""


def _waitpid(pid: int) -> Callable[[], int | None]:
    reaped: list[int] = []

    def poll() -> int | None:
        if not reaped:
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                return None
            reaped.append(os.waitstatus_to_exitcode(status))
        return reaped[0]

    return poll


def _command(
    ctx: TaskContext,
    operator: CommandOperator | ContainerOperator,
    resources: Resources,
    engine: str | None,
) -> tuple[list[str], dict[str, str], Callable[[], None] | None]:
    if isinstance(operator, CommandOperator):
        return list(operator.command), {**contract_env(ctx), **operator.env}, None
    if engine is None:
        message = "no container engine (docker or podman) on this worker"
        return ["/bin/sh", "-c", f"echo '{message}' >&2; exit 127"], {}, None
    name = f"kaapana-{ctx.run_id}-{ctx.task_id}-{ctx.attempt}"
    env = {**contract_env(ctx, workflow_dir=CONTAINER_WORKFLOW_DIR), **operator.env}
    command = [engine, "run", "--rm", "--name", name, f"--cpus={resources.cpu:g}"]
    if resources.memory_mb:
        command.append(f"--memory={resources.memory_mb}m")
    if resources.gpu:
        command.append(f"--gpus={resources.gpu}")
    for shared in ctx.shared_dirs:  # where the input links point, at the same paths
        command += ["-v", f"{shared}:{shared}:ro"]
    command += ["-v", f"{ctx.workflow_dir}:{CONTAINER_WORKFLOW_DIR}"]
    for key, value in env.items():
        command += ["-e", f"{key}={value}"]
    command += [operator.image, *operator.command]

    def kill_container() -> None:
        subprocess.run([engine, "kill", name], capture_output=True, check=False, timeout=30)

    return command, {}, kill_container


def _watch(
    ctx: TaskContext,
    pid: int,
    poll: Callable[[], int | None],
    timeout: float | None,
    kill_extra: Callable[[], None] | None,
) -> tuple[EndValues, int | None]:
    """Wait for the child, waking at once when it exits (a pidfd) and every 50 ms to look for
    a cancel marker or the deadline."""
    deadline = None if timeout is None else time.monotonic() + timeout
    cancel = ctx.control_dir / CANCEL_FILE
    with _exit_notifier(pid) as notifier:
        while True:
            code = poll()
            if code is not None:
                return (EndValues.succeeded if code == 0 else EndValues.failed), code
            reason = None
            if cancel.exists():
                reason = EndValues.canceled
            elif deadline is not None and time.monotonic() > deadline:
                reason = EndValues.timeout
            if reason is not None:
                if kill_extra is not None:
                    kill_extra()
                _kill_group(pid, poll)
                return reason, None
            notifier(_WATCH_INTERVAL)


@contextlib.contextmanager
def _exit_notifier(pid: int) -> Iterator[Callable[[float], None]]:
    """A callable that sleeps until ``pid`` exits or the timeout passes."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: plain sleeps
        yield time.sleep
        return
    try:
        yield lambda seconds: select.select([fd], [], [], seconds) and None
    finally:
        os.close(fd)


def _kill_group(pid: int, poll: Callable[[], int | None]) -> None:
    """SIGTERM to the whole group, SIGKILL to what is left after a short grace."""
    for sig, grace in ((signal.SIGTERM, _KILL_GRACE), (signal.SIGKILL, 0.0)):
        _signal(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and poll() is None:
            time.sleep(0.02)
        if poll() is not None:
            break
    _signal(pid, signal.SIGKILL)  # grandchildren outlive a leader that exits on SIGTERM
    while poll() is None:
        time.sleep(0.01)


def _signal(pid: int, sig: int) -> None:
    """The group led by ``pid``; the child alone if it has not called setsid yet (a kill in
    its first moments), when it cannot have started anything else."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def container_engine() -> str | None:
    """docker or podman, whichever is on PATH (podman first: it needs no daemon)."""
    for name in ("podman", "docker"):
        path = shutil.which(name)
        if path:
            return path
    return None


__all__ = ["EndValues", "TaskOutcome", "container_engine", "contract_env", "execute"]
