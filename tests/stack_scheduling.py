"""How the suite spreads over xdist workers (a plugin): every test of one running stack on one worker.

A session fixture is per worker, so tests sharing a stack must share a worker, or each worker
starts a stack of its own. xdist's `loadgroup` marks cannot say so with pytest 9 (it rewrites a
node id attribute pytest no longer reads), and the controller that schedules collects nothing, so
the groups are by module here, and each worker checks after collecting that every test using a
stack fixture lives in a module of that stack's group.

A group's tests run one after another on its worker, so its stack is stopped as soon as the last of
them ends, not at the end of the session: a stack left running (its scheduler, DAG processor,
daemon and code servers) takes CPU from every test after it on a two-core machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

# The session fixture each stack's tests use, and the modules holding them.
STACK_GROUPS = {
    "full_stack_env": ("test_full_stack.py", "test_peering_stack.py"),
    "porting_stack_env": ("test_cutover_stack.py",),
    "airflow_stack": ("test_airflow_stack.py", "test_airflow_ui.py"),
    "dagster_stack": ("test_dagster_daemon_kills.py", "test_dagster_stack.py", "test_dagster_ui.py"),
}
GROUP_OF_MODULE = {module: fixture for fixture, modules in STACK_GROUPS.items() for module in modules}


def scope_of(nodeid: str) -> str:
    """A stack's group for its modules' tests; every other test is a unit of its own."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    return GROUP_OF_MODULE.get(module, nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class StackScheduling(LoadScopeScheduling):  # type: ignore[misc]
        """Whole groups, largest first (xdist's reordering), then single tests as workers free up."""

        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return StackScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    misplaced = [
        f"{item.nodeid} uses {fixture} but is not in {', '.join(modules)}"
        for item in items
        for fixture, modules in STACK_GROUPS.items()
        if fixture in getattr(item, "fixturenames", ()) and item.path.name not in modules
    ]
    if misplaced:
        raise pytest.UsageError("a stack's test outside its group:\n" + "\n".join(misplaced))


_stops: dict[str, Callable[[], None]] = {}


def stopped_once(fixture: str, stop: Callable[[], None]) -> Callable[[], None]:
    """`stop` made idempotent, and run when the last test of `fixture`'s group on this worker ends.

    The fixture's own teardown calls the returned function too; whichever comes first stops the stack.
    """
    done: list[bool] = []

    def once() -> None:
        if not done:
            done.append(True)
            stop()

    _stops[fixture] = once
    return once


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if not hasattr(item.config, "workerinput"):
        return  # without xdist, a group's modules need not run one after another
    group = GROUP_OF_MODULE.get(item.path.name)
    if group is None or (nextitem is not None and GROUP_OF_MODULE.get(nextitem.path.name) == group):
        return
    stop = _stops.pop(group, None)
    if stop is not None:
        stop()
