"""gunicorn configuration for the end-to-end test (Tests/EndToEndTests/GunicornTests.swift).

Environment (set by the test):
  PROMETHEUS_MULTIPROC_DIR   the multiprocess directory the workers write and `serve` reads
  PROM_MULTIPROC_CLI         the prom-multiproc-cli executable, for the child_exit hook
  E2E_STATE_DIR              where this config writes `port` (once listening) and `mark-dead.log`
  E2E_WORKERS, E2E_MAX_REQUESTS  worker count and max_requests (default 3 and 20)

Workers are recycled after max_requests requests (no jitter); child_exit runs
`prom-multiproc-cli mark-dead` for every worker that exits, as prometheus_client's documentation
prescribes with multiprocess.mark_process_dead.
"""
import os
import subprocess

bind = "127.0.0.1:0"
workers = int(os.environ.get("E2E_WORKERS", "3"))
worker_class = "sync"
max_requests = int(os.environ.get("E2E_MAX_REQUESTS", "20"))
max_requests_jitter = 0
timeout = 30
graceful_timeout = 5
accesslog = None
loglevel = "info"
# gunicorn's runtime control socket (a fixed path under $HOME by default) would be shared by
# every gunicorn a test run starts.
control_socket_disable = True

_state = os.environ["E2E_STATE_DIR"]
_cli = os.environ["PROM_MULTIPROC_CLI"]
_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def when_ready(server):
    # The kernel picked the port (bind ...:0): publish it atomically for the test.
    port = server.LISTENERS[0].sock.getsockname()[1]
    tmp = os.path.join(_state, "port.tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, os.path.join(_state, "port"))


def child_exit(server, worker):
    result = subprocess.run(
        [_cli, "mark-dead", "--pid", str(worker.pid), "--dir", _dir],
        capture_output=True, text=True, timeout=20,
    )
    with open(os.path.join(_state, "mark-dead.log"), "a") as log:
        log.write("pid=%d status=%d out=%r err=%r\n" % (worker.pid, result.returncode, result.stdout, result.stderr))
