"""The socket between a worker on a Ray node and its Ray task (ssnas.cluster.link), without Ray."""

import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

import pytest

from ssnas.cluster.link import HeadLink, serve
from ssnas.errors import RegistryError
from ssnas.scheduling.executor import WorkerExit


@pytest.fixture
def link():
    calls = []

    def answer(method, args, kwargs):
        calls.append((method, args, kwargs))
        if method == "get_run":
            return {"id": args[0], "status": "queued"}
        if method == "start_run":
            raise RegistryError("run r1 is already running")
        if method == "finish_run":
            raise KeyError("boom")
        return None

    ours, theirs = socket.socketpair()
    task = threading.Thread(target=serve, args=(Connection(theirs.detach()), answer), daemon=True)
    task.start()
    worker_end = Connection(ours.detach())
    yield HeadLink(worker_end), calls
    worker_end.close()
    task.join(timeout=5)


def test_calls_travel_with_their_arguments_and_results(link):
    head, calls = link
    assert head.get_run("r1") == {"id": "r1", "status": "queued"}
    head.add_metrics([("r1", 1, 0, "train", "loss", 0.5, 1.0)])
    head.heartbeat("r1", progress=0.25)
    assert calls[1:] == [("add_metrics", ([("r1", 1, 0, "train", "loss", 0.5, 1.0)],), {}),
                         ("heartbeat", ("r1",), {"progress": 0.25})]


def test_errors_come_back_ssnas_ones_as_they_are(link):
    head, _ = link
    with pytest.raises(RegistryError, match="already running"):
        head.start_run("r1", pid=1, host="h", device="cpu", node="n")
    with pytest.raises(RuntimeError, match="KeyError: 'boom'"):
        head.finish_run("r1", "finished")


def test_only_registry_calls_are_offered(link):
    head, _ = link
    with pytest.raises(AttributeError):
        head.delete_run("r1")


def test_a_worker_whose_task_is_gone_exits_at_once():
    code = ("import socket\n"
            "from multiprocessing.connection import Connection\n"
            "from ssnas.cluster.link import HeadLink\n"
            "ours, theirs = socket.socketpair()\n"
            "theirs.close()\n"
            "HeadLink(Connection(ours.detach())).heartbeat('r1')\n"
            "print('still here')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == WorkerExit.LINK_LOST and "still here" not in done.stdout and "gone" in done.stderr


def test_one_contract_for_the_registry_file_and_the_link():
    """What a worker may ask of the registry is `WorkerRecords`: the registry has it all, the head answers it."""
    from ssnas.cluster.head import RegistryHead
    from ssnas.cluster.link import LINK_CALLS
    from ssnas.records import RECORD_CALLS
    from ssnas.registry import Registry

    assert {"start_run", "finish_run", "add_metrics", "heartbeat"} <= RECORD_CALLS and "close" not in RECORD_CALLS
    assert all(callable(getattr(Registry, name)) for name in RECORD_CALLS)
    assert LINK_CALLS == RECORD_CALLS | {"ship_files"}
    with pytest.raises(Exception, match="not a registry call a worker may make"):
        RegistryHead("/nonexistent").record("delete_run", "r1")
