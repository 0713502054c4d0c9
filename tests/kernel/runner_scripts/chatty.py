"""Prints argv[1] numbered lines of about 50 bytes, then 'done', then waits."""

import sys
import time

for i in range(int(sys.argv[1])):
    print(f"line {i:05d} " + "x" * 39)
print("done", flush=True)
while True:
    time.sleep(1)
