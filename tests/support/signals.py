"""Children that a test interrupts get the default SIGINT disposition back.

A test runner started in the background by a shell (`make test &`, CI wrappers)
inherits SIGINT ignored, and every child it starts inherits that too: a SIGINT the
test sends would then be ignored and the test fail for the wrong reason. Pass
`preexec_fn=default_sigint` to `subprocess.Popen` of any child a test sends SIGINT to.
"""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """Run in the child between fork and exec: SIGINT raises KeyboardInterrupt again."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
