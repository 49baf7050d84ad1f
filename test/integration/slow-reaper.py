"""A supervisor that is slow to reap, for the crash tests.

It becomes a child subreaper, starts the command given as its arguments in a process group of
its own, and reaps nothing until it gets SIGTERM: a killed child, and every descendant orphaned
with it, stays a zombie meanwhile. This is the window a quickly restarted daemon meets after a
crash (init or a container runtime has not yet reaped the dead engine CLI that holds the lock),
held open for as long as the test needs instead of the 1-2 s it lasts by chance.
"""

import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36

if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("slow-reaper: prctl(PR_SET_CHILD_SUBREAPER) failed: errno %d" % ctypes.get_errno())

child = os.fork()
if child == 0:
    os.setpgid(0, 0)
    os.execvp(sys.argv[1], sys.argv[1:])

signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
while True:
    signal.pause()
