"""Ignores SIGTERM and starts a child that ignores it too; prints the child's pid."""

import signal
import subprocess
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
                          "import signal, time\n"
                          "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                          "while True: time.sleep(1)\n"])
print(f"ready child={child.pid}", flush=True)
while True:
    time.sleep(1)
