"""Serve Gnocchi's REST API without uwsgi: ``python serve.py PORT --config-file gnocchi.conf``.

Runs with the Gnocchi virtualenv's python (built by ``.ci/gnocchi/setup.sh``). ``gnocchi-api``
only ``exec``s uwsgi, which is not installed (its pip build needs a C toolchain run we avoid), so
this loads the same WSGI application (``gnocchi.rest.app.load_app``) and hands it to werkzeug,
which is already a Gnocchi dependency. It binds 127.0.0.1 only: test stacks stay on loopback.

The port is taken from ``argv``; oslo.config parses what remains (``--config-file ...``).

Gnocchi logs, at INFO and once per application, the whole parsed configuration (``conf.__dict__``,
from ``gnocchi.rest.app._setup_app``), which includes ``[keystone_authtoken] password``. That one
logger is raised to WARNING here so the API log holds no secret; everything else stays at INFO.
"""

# Imports are deferred on purpose: oslo.config reads sys.argv, so the port must be popped first.
# ruff: noqa: PLC0415

from __future__ import annotations

import logging
import sys


def main() -> None:
    if len(sys.argv) < 2 or not sys.argv[1].isdigit():
        sys.exit("usage: serve.py PORT --config-file gnocchi.conf")
    port = int(sys.argv.pop(1))

    from gnocchi.cli import api
    from gnocchi.rest import app
    from werkzeug.serving import run_simple

    conf = api.prepare_service()
    logging.getLogger("gnocchi.rest.app").setLevel(logging.WARNING)
    application = app.load_app(conf)
    run_simple("127.0.0.1", port, application, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
