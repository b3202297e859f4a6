"""Run untrusted (learner) code in a child process the grader can always survive.

`run()` starts a command in its own session (so the whole process group can be
killed), with resource limits applied in the child before `exec`:

* RLIMIT_AS      - address space (default 4 GiB, `KATA_MEMORY_LIMIT` / --memory-limit);
                   unbounded allocation ends in MemoryError or a signal, never in
                   the grader or the machine swapping.
* RLIMIT_CORE 0  - a segfault leaves no core file behind.
* RLIMIT_FSIZE   - one file may not grow beyond 1 GiB (a kata filling the disk).

Output (stdout and stderr, merged) is drained by a thread that keeps only the first
and last `output_cap` bytes: a kata printing gigabytes costs no grader memory.
The wall-clock `timeout` kills the whole process group (SIGKILL), so a child that
forks or spawns helpers (pytest-xdist workers) dies with it.

What this is not: a security boundary. The child runs as the same user, can read
and write whatever that user can, and can open network connections. Course staff
grading untrusted submissions run the grader inside a container (Gradescope and
GitHub Classroom already do); see docs/GRADING.md.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

GiB = 1024**3
DEFAULT_MEMORY = 4 * GiB
DEFAULT_OUTPUT_CAP = 64 * 1024  # bytes kept at each end of the output
MAX_FILE_SIZE = 1 * GiB
MEMORY_ENV = "KATA_MEMORY_LIMIT"


def parse_size(text: str | int | None) -> int | None:
    """'4G', '512M', '1073741824', 0/'none' (= unlimited) -> bytes or None."""
    if text is None:
        return DEFAULT_MEMORY
    if isinstance(text, int):
        return text or None
    value = str(text).strip().lower()
    if value in ("", "0", "none", "unlimited"):
        return None
    units = {"k": 1024, "m": 1024**2, "g": GiB, "t": 1024**4}
    value = value.removesuffix("ib").removesuffix("b")
    if value[-1] in units:
        return int(float(value[:-1]) * units[value[-1]])
    return int(value)


def default_memory_limit() -> int | None:
    return parse_size(os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY)


def trusted_memory(learner_memory: int | None) -> int | None:
    """The trusted process's limit: the learner's worker gets `learner_memory`, this side 2 GiB more
    (it holds PyTorch and the expected values; a kata exhausting its own limit must not take it down)."""
    return None if learner_memory is None else learner_memory + 2 * GiB


def format_bytes(n: int | None) -> str:
    if n is None:
        return "unlimited"
    for unit, size in (("GiB", GiB), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


@dataclass
class Outcome:
    """What happened to the child, as facts the grader can trust (it observed them)."""

    returncode: int | None
    duration: float
    timed_out: bool = False
    timeout: float = 0.0
    output_head: str = ""
    output_tail: str = ""
    output_bytes: int = 0
    memory_limit: int | None = None
    start_error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def signal(self) -> int | None:
        if self.returncode is not None and self.returncode < 0:
            return -self.returncode
        return None

    @property
    def signal_name(self) -> str | None:
        sig = self.signal
        if sig is None:
            return None
        try:
            return signal.Signals(sig).name
        except ValueError:
            return f"signal {sig}"

    @property
    def output_truncated(self) -> bool:
        return self.output_bytes > len(self.output_head.encode()) + len(self.output_tail.encode())

    @property
    def output(self) -> str:
        if not self.output_truncated:
            return self.output_head + self.output_tail
        dropped = self.output_bytes - len(self.output_head.encode()) - len(self.output_tail.encode())
        return f"{self.output_head}\n[... {dropped} bytes of output omitted ...]\n{self.output_tail}"

    def describe(self) -> str | None:
        """A plain-words reason when the process did not end normally, else None."""
        if self.start_error:
            return f"could not start: {self.start_error}"
        if self.timed_out:
            return f"timeout after {self.timeout:g} s (the process group was killed)"
        if self.signal is not None:
            name = self.signal_name
            hint = ""
            if name in ("SIGSEGV", "SIGBUS", "SIGABRT"):
                hint = f" (a crash in native code; the memory limit is {format_bytes(self.memory_limit)})"
            elif name == "SIGKILL":
                hint = " (killed from outside, often by the system's out-of-memory killer)"
            elif name == "SIGXFSZ":
                hint = f" (a file grew beyond {format_bytes(MAX_FILE_SIZE)})"
            return f"crashed with signal {name}{hint}"
        return None


class _Drain(threading.Thread):
    """Read a pipe to EOF, keeping the first and last `cap` bytes and counting the rest."""

    def __init__(self, stream, cap: int, on_output=None):
        super().__init__(daemon=True)
        self.stream, self.cap, self.on_output = stream, cap, on_output
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def run(self) -> None:
        try:
            while True:
                chunk = self.stream.read1(65536) if hasattr(self.stream, "read1") else self.stream.read(65536)
                if not chunk:
                    break
                self.total += len(chunk)
                if self.on_output is not None:
                    try:
                        self.on_output(chunk.decode("utf-8", "replace"))
                    except Exception:  # a display problem must not stop the draining
                        self.on_output = None
                room = self.cap - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                if chunk:
                    self.tail += chunk
                    if len(self.tail) > self.cap:
                        del self.tail[: len(self.tail) - self.cap]
        except (OSError, ValueError):  # pragma: no cover - pipe closed under us
            pass


def limits(memory: int | None):
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_SIZE, MAX_FILE_SIZE))
        except (ValueError, OSError):  # pragma: no cover - a lower hard limit already
            pass
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return apply


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run(
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: str | os.PathLike,
    timeout: float,
    memory: int | None = DEFAULT_MEMORY,
    output_cap: int = DEFAULT_OUTPUT_CAP,
    on_output=None,
) -> Outcome:
    """Run `cmd` under the limits; never raises for anything the child does."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=limits(memory),
        )
    except (OSError, subprocess.SubprocessError) as err:
        return Outcome(None, 0.0, start_error=str(err), memory_limit=memory, timeout=timeout)
    drain = _Drain(proc.stdout, output_cap, on_output)
    drain.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(proc)
        proc.wait()
    except BaseException:  # Ctrl-C in the grader: take the child with us
        kill_group(proc)
        proc.wait()
        raise
    # Grandchildren may survive the leader and keep the pipe open: end the group.
    kill_group(proc)
    drain.join(timeout=5)
    proc.stdout.close()
    return Outcome(
        returncode=proc.returncode,
        duration=time.monotonic() - started,
        timed_out=timed_out,
        timeout=timeout,
        output_head=bytes(drain.head).decode("utf-8", "replace"),
        output_tail=bytes(drain.tail).decode("utf-8", "replace"),
        output_bytes=drain.total,
        memory_limit=memory,
    )


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return found


def become_subreaper() -> bool:
    """Orphaned descendants (double forks, setsid) re-parent to this process instead of init."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def end_process_tree(proc: subprocess.Popen) -> None:
    """Kill `proc`, its process group and every descendant re-parented to us, then reap them.

    In the namespace sandbox the kernel does this (the PID namespace ends with its first
    process); elsewhere this process is a subreaper, so escaped descendants are its children.
    """
    kill_group(proc)
    try:
        proc.kill()
    except OSError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - unkillable (D state)
        pass
    me = os.getpid()
    for _ in range(50):
        # Only the worker was started on purpose; anything else here is its escaped descendant.
        strays = [pid for pid in _children(me) if pid != proc.pid]
        if not strays:
            break
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in strays:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass

