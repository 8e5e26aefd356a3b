"""Runs a program with every signal unblocked: `python exec_unblocked.py PROGRAM [ARGS...]`.

Swift's Foundation.Process starts children with the signal mask of the launching thread, and the
test runner's threads (Dispatch workers) block nearly every signal. gunicorn's arbiter relies on
SIGCHLD, SIGTERM and friends: with them blocked it never reaps a retired worker, never starts its
replacement, never runs child_exit and cannot be stopped politely. This wrapper clears the mask
(and resets SIGPIPE to its default) and then replaces itself with PROGRAM.
"""
import os
import signal
import sys

if len(sys.argv) < 2:
    sys.exit("usage: exec_unblocked.py PROGRAM [ARGS...]")
signal.pthread_sigmask(signal.SIG_SETMASK, [])
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])
