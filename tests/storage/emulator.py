"""A store's emulator as the tests run it: a child process in its own session on a free 127.0.0.1 port, its
output in a log under the fixture's folder, its objects removed when it stops (the log stays)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.processes import free_port, stop_group, wait_for_port
from tests.registry.helpers import missing_service


class Emulator:
    """A running emulator we started (under `work`), stopped by its fixture; each store says how to start it."""

    name: str  # the store, as the tests name it
    program: Path
    missing: str  # what to do when `program` is not installed
    data: str  # the folder under `work` that holds the objects

    def __init__(self, work: Path) -> None:
        if not self.program.exists():
            missing_service(self.missing)
        self.work, self.port = work, free_port()
        self.log = (work / f"{self.name}-emulator.log").open("wb")
        self.process = subprocess.Popen([str(self.program), *self.arguments()], cwd=work, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port)

    def arguments(self) -> list[str]:
        """The program's arguments: serve on 127.0.0.1:`self.port`, the objects in `self.data` under `work`."""
        raise NotImplementedError

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_group(self.process)
        self.log.close()
        shutil.rmtree(self.work / self.data, ignore_errors=True)
