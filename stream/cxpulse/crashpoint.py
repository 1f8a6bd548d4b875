"""Test-only crash points: die like `kill -9` at a named place inside a batch
(the worker's and the map stage's).

Why: a random SIGKILL (tests/integration/test_worker_crash.py) hits a narrow
window, such as "the batch's state is written but its dead letters are not
yet acknowledged", only by luck, one run in several. A crash point makes such
a window deterministic: the worker calls `crash_point("<name>")` where the
window is, and a test that sets `TEST_CXPULSE_CRASH_AT=<name>` in the
worker's environment makes it `os._exit` exactly there (no cleanup, no
flush: what a kill -9 leaves behind). Without that variable, the default,
a crash point costs one string comparison and does nothing.

Named points of the worker (both runtimes, only in a batch that rejected a message):

* `state-written`: the batch's state records and commit marker are written,
  not yet acknowledged. faust runtime: written to the local store (RocksDB
  keeps them across the crash), not sent to the changelog yet; the dead
  letters must be acknowledged by then. direct runtime: handed to the
  producer in the batch's transaction, before the dead letters are.
* `state-sent` (direct runtime with `transactional_writes`): the same records
  are on the broker (flushed) in the batch's open transaction, which the broker
  aborts after the producer's transaction timeout: what a kill -9 in a big
  batch leaves in the log (a restart must not read it as state, whatever its
  own `transactional_writes`).

Named points of the direct runtime with changelog format 4 (`changelog_journal_slots`):

* `journal-written`: a batch whose changes ride in its commit marker (the journal)
  is handed to the producer in its transaction, not committed yet.
* `checkpoint-written`: the same for a checkpoint batch, which writes every value
  pending since the last checkpoint as keyed records (the restart must rebuild
  them from the journal markers before it).

Named points of the map stage (`cxpulse map`, only in a batch that keeps a new
Zammad snapshot):

* `map-events-acked`: the batch's contract events are acknowledged, its
  snapshots not yet written (a restart diffs the batch again against the
  older snapshots: the same events, same ids).
* `map-snapshots-written`: the snapshots are acknowledged too, the consumer
  offsets not yet committed (a restart maps the batch again against the new
  snapshots: its diffs are empty, its articles duplicates by id).
"""

from __future__ import annotations

import os

#: The environment variable a test sets to arm one crash point (not `CXPULSE_*`:
#: the settings reject unknown variables of that prefix, see `cxpulse.settings`).
ENV = "TEST_CXPULSE_CRASH_AT"
#: The exit code of a crash point, so a test can tell it from any other exit.
EXIT_CODE = 86

_ARMED = os.environ.get(ENV, "")


def armed(name: str) -> bool:
    """Whether the environment armed `name` (for a point that needs work before it)."""
    return bool(_ARMED) and name == _ARMED


def crash_point(name: str) -> None:
    """Exit at once, without any cleanup, if the environment armed `name`."""
    if _ARMED and name == _ARMED:
        os.write(2, f"crash point {name}: exiting\n".encode())
        os._exit(EXIT_CODE)
