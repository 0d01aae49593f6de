"""The ``nodegraph`` console script: one behaviour for Ctrl-C at every moment.

The command's real work (``nodegraph.cli``) imports torch, pydantic, networkx and the node
families, which takes seconds; a Ctrl-C in that time used to print a long import traceback, and
one that reached click outside a command printed "Aborted!" with exit status 1. This is a
separate top-level package because importing anything inside ``nodegraph`` first runs
``nodegraph/__init__.py``, which imports torch: here nothing heavy is imported before the
handler is in place, so wherever the interrupt lands -- imports, parsing, a node, a save -- the
user gets the line ``interrupted`` and exit status 130 (128 + SIGINT, what shells report).
Files are written through temp files and renames (``nodegraph.fsutil.publish``), so an
interrupted run leaves finished files or none, never half of one.
"""

from __future__ import annotations

import signal
import sys

INTERRUPTED = 130


def _interrupted() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not print a traceback now
    try:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
    finally:
        sys.exit(INTERRUPTED)


def main() -> None:
    """Entry point (``[project.scripts] nodegraph``)."""
    try:
        import click

        from nodegraph.cli import main as cli

        try:
            code = cli.main(prog_name="nodegraph", standalone_mode=False)
        except click.exceptions.Abort:
            _interrupted()
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        sys.exit(code if isinstance(code, int) else 0)
    except KeyboardInterrupt:
        _interrupted()


if __name__ == "__main__":
    main()
