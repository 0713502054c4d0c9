"""Prints where it runs and what it was given (token included, to prove the log redacts
it), on stdout and stderr, then waits to be stopped."""

import os
import sys
import time

print(f"cwd={os.getcwd()}")
print(f"plugin={os.environ.get('FACEFORGE_PLUGIN_ID')} extra={os.environ.get('EXTRA')}")
print(f"token={os.environ.get('FACEFORGE_TOKEN')} bare {os.environ.get('FACEFORGE_TOKEN')}")
print("Authorization: Bearer header-secret-value", file=sys.stderr)
print("a line without newline", end="", file=sys.stderr)
sys.stderr.flush()
print("ready", flush=True)
while True:
    time.sleep(1)
