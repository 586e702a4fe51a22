"""The real node as a child process, started from this source tree.

Started through ``depth_anything_ros.ros.node.main`` with ``python -c`` rather than a colcon
install, so a benchmark run needs no build; the process, its executor, threads and DDS
participant are the same as with ``ros2 run``. Output goes to files: an unread pipe
could fill up and stall the node mid-measurement.
"""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from benchmarks.artifacts import REPO

LAUNCHER = "import sys; from depth_anything_ros.ros.node import main; sys.exit(main())"
STOP_TIMEOUT_S = 10.0


class NodeProcess:
    def __init__(self, model: Path, domain_id: int, namespace: str, cache_dir: Path,
                 log_dir: Path, extra_params: dict[str, object] | None = None) -> None:
        params = {"model_path": str(model), "cache_dir": str(cache_dir), **(extra_params or {})}
        args = [sys.executable, "-c", LAUNCHER, "--ros-args", "-r", f"__ns:={namespace}"]
        for name, value in params.items():
            args += ["-p", f"{name}:={value}"]
        env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1",
                   RCUTILS_COLORIZED_OUTPUT="0",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                            os.environ.get("PYTHONPATH")])))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / "node.log"
        self._log = open(self.log_path, "wb")
        self.started_at = time.time()
        self.popen = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def peak_rss_mb(self) -> float | None:
        """VmHWM: the kernel's high-water mark of the process's resident memory."""
        try:
            with open(f"/proc/{self.popen.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            return None
        return None

    def output_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> int | None:
        """SIGINT as Ctrl-C would; killed if it does not exit in time. Returns the code."""
        if self.alive():
            self.popen.send_signal(signal.SIGINT)
        try:
            code = self.popen.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            code = self.popen.wait(STOP_TIMEOUT_S)
        self._log.close()
        return code

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
