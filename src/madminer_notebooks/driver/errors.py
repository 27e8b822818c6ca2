"""The drivers' errors and their exit statuses, shared by ``drivers/run``, ``drivers/stage``, ``drivers/yadage``
and ``drivers/reana``: 2 for bad input (nothing was started), 1 for failed work (finished work is kept),
130 for an interruption."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable

from ..madgraph import MadGraphUnavailable
from ..params import ParamsError
from ..tracking import TrackingUnavailable
from .manifest import CorruptManifest

#: The errnos of a full disk (or a used-up quota): what the drivers report as "no space left".
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class UsageError(ValueError):
    """Bad command-line input or set-up, found before any work started."""


class RunFailed(RuntimeError):
    """Work failed; what finished before it is kept, and the same command resumes."""


def exit_status(body: Callable[[], int], unit: str) -> int:
    """Run ``body`` and turn the drivers' errors into one ``error:`` line and an exit status.

    ``unit`` names what is kept after a failure or an interruption ("executions", "steps").
    """
    try:
        return body()
    except (ParamsError, UsageError, TrackingUnavailable, MadGraphUnavailable, CorruptManifest) as err:  # before work
        for line in str(err).splitlines():  # every problem on its own error: line
            print(f"error: {line}", file=sys.stderr)
        return 2
    except RunFailed as err:
        print(f"error: {err}\nfinished {unit} are kept; run the same command again to resume", file=sys.stderr)
        return 1
    except OSError as err:
        if err.errno not in NO_SPACE:
            raise
        where = f" writing {err.filename}" if err.filename else ""
        print(f"error: no space left on the device{where}; free some space (or choose another folder) and run "
              f"the same command again: finished {unit} are kept", file=sys.stderr)  # fmt: skip
        return 1
    except KeyboardInterrupt:
        print(f"error: interrupted; finished {unit} are kept, run the same command again to resume", file=sys.stderr)
        return 130
