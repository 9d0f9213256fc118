"""``async def`` jobs in the sandbox: an asyncio event loop that needs no sockets.

asyncio's own loops open a socket pair to wake themselves, which the sandbox does not grant.
A guest has no I/O of its own to wait for (every host call answers directly), so this loop
waits only for time: its "selector" sleeps until the next timer (``asyncio.sleep``,
``wait_for``'s deadline) and has nothing else to report. ``asyncio.gather`` of several
client calls works; the calls run one after another.

asyncio is imported, and the loop made, when the first ``async def`` job is registered,
which componentize-py does while it builds the component: both are then in the component's
snapshot, and a synchronous job carries neither.
"""

import time


class _TimeOnly:
    """The loop's selector: no file descriptors, only a timeout to sleep through."""

    def select(self, timeout):
        if timeout is None:
            # Nothing is ready, no timer is set and nothing outside can wake the loop.
            raise RuntimeError(
                "the job awaits something that nothing will complete "
                "(no timer, no other task: a future no one sets?)"
            )
        if timeout > 0:
            time.sleep(timeout)
        return []

    def get_map(self):
        return {}

    def close(self):
        pass


_class = None


def loop_class():
    """The sandbox's loop class (made once): ``tgrun test`` makes each test's loop of it."""
    global _class
    if _class is not None:
        return _class
    import asyncio

    class SandboxLoop(asyncio.BaseEventLoop):
        def __init__(self):
            super().__init__()
            self._selector = _TimeOnly()

        def _process_events(self, event_list):
            pass

        def _write_to_self(self):
            # call_soon_threadsafe's wake-up: there is no other thread to wake it from.
            pass

    _class = SandboxLoop
    return SandboxLoop


_loop = None


def prepare():
    """Imports asyncio and makes the loop, at build time: componentize-py keeps both in the
    component's snapshot, so a run starts with a loop made (making one in a run costs
    about a millisecond of the guest's time)."""
    global _loop
    if _loop is None:
        _loop = loop_class()()


def run(coro):
    """Runs ``coro`` to its end on the loop and answers its result (or raises its
    exception); tasks it left running are cancelled, as ``asyncio.run`` does. A run is one
    instance, made fresh from the snapshot: the loop is new to every run."""
    import asyncio

    prepare()
    loop = _loop
    try:
        return loop.run_until_complete(coro)
    finally:
        left = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in left:
            t.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        if loop._asyncgens:
            loop.run_until_complete(loop.shutdown_asyncgens())
