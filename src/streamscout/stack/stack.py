"""Bringing the whole local stack up, down, and reporting on it.

``up`` is idempotent: a component already running from this state directory is left alone
(only its health and one-time setup are checked again); one that is not running gets its
ports checked first, so a port held by a foreign process fails fast and names the port.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from typing import Callable, Iterable, Iterator

from streamscout.stack.components import Component, StackContext, StackError, all_components
from streamscout.stack.ports import ensure_free, find_duplicates


@contextlib.contextmanager
def exclusive(ctx: StackContext) -> Iterator[None]:
    """One `up`/`down` at a time per state directory: several developers share one stack."""
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    with open(ctx.run_dir / "stack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def select(ctx: StackContext, names: Iterable[str] = ()) -> list[Component]:
    components = all_components(ctx)
    wanted = list(names)
    if not wanted:
        return components
    known = {c.name: c for c in components}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise StackError(f"unknown component {unknown[0]!r}; known: {', '.join(known)}")
    return [c for c in components if c.name in wanted]


def check_configuration(ctx: StackContext) -> None:
    claims = [(c.name, e) for c in all_components(ctx) for e in c.endpoints()]
    problems = find_duplicates(claims)
    if problems:
        raise StackError("; ".join(problems))


def wait_healthy(component: Component, timeout: float | None = None) -> None:
    deadline = time.monotonic() + (timeout or component.start_timeout)
    while time.monotonic() < deadline:
        if component.healthy():
            return
        if component.daemon.exited():
            raise StackError(
                f"{component.name} exited during start-up; see {component.log_file}:\n{component.daemon.log_tail()}"
            )
        time.sleep(0.5)
    raise StackError(
        f"{component.name} did not become healthy within {timeout or component.start_timeout:.0f} s; "
        f"see {component.log_file}"
    )


def up(ctx: StackContext, names: Iterable[str] = (), echo: Callable[[str], None] = print) -> None:
    check_configuration(ctx)
    with exclusive(ctx):
        for component in select(ctx, names):
            _up_one(component, echo)


def _up_one(component: Component, echo: Callable[[str], None]) -> None:
    started = time.monotonic()
    if component.running():
        how = "already running"
    else:
        ensure_free(component.name, component.endpoints())
        try:
            component.start()
        except StackError:
            raise
        except Exception as exc:  # a start-up step failed: say which component and where to look
            raise StackError(f"{component.name} failed to start: {exc}; see {component.log_file}") from exc
        how = "started"
    wait_healthy(component)
    note = component.after_healthy()
    took = time.monotonic() - started
    echo(f"{component.name:<18} up  {component.address()}  ({how}, {took:.1f} s{'; ' + note if note else ''})")


def down(ctx: StackContext, names: Iterable[str] = (), echo: Callable[[str], None] = print) -> None:
    # Reverse order: Flink's TaskManager before its JobManager, the databases last.
    with exclusive(ctx):
        for component in reversed(select(ctx, names)):
            if component.stop():
                echo(f"{component.name:<18} stopped")
            else:
                echo(f"{component.name:<18} was not running")


def status(ctx: StackContext, names: Iterable[str] = ()) -> dict[str, dict]:
    report = {}
    for component in select(ctx, names):
        report[component.name] = {
            "state": component.state(),
            "address": component.address(),
            "pid": component.daemon.pid(),
            "log": str(component.log_file),
        }
    return report
