"""Exits cleanly (code 0) on SIGTERM, saying so."""

import signal
import sys
import time


def bye(signum, frame):
    print("got SIGTERM, bye", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
while True:
    time.sleep(1)
