"""How the direct worker ends after a failure it cannot repair: exit 70, and a
fenced producer gets its one line wherever the fence is met. A worker frozen past
its session can meet the fence in its batch or in the write a revocation settles;
the operator (and the restart policy) must read the same thing either way."""

from __future__ import annotations

import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, sys
    from aiokafka.errors import ProducerFenced
    from cxpulse.worker.direct import _or_exit

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    async def step() -> None:
        raise {exc}

    asyncio.run(_or_exit(step(), stopping=lambda: False))
    """
)


def _run(exc: str) -> subprocess.CompletedProcess[str]:
    code = _SCRIPT.format(exc=exc)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_fence_met_in_a_rebalance_step_is_named_not_a_traceback() -> None:
    done = _run("ProducerFenced()")
    assert done.returncode == 70, done.stderr
    assert "fenced: another worker took a partition over" in done.stderr
    assert "rebalance step was aborted" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unexpected_failure_keeps_its_traceback() -> None:
    done = _run("RuntimeError('disk on fire')")
    assert done.returncode == 70, done.stderr
    assert "rebalance step failed; exiting so the state is rebuilt exactly" in done.stderr
    assert "Traceback" in done.stderr and "disk on fire" in done.stderr
    assert "fenced" not in done.stderr
