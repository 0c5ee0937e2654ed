"""``python -m datamanifest.testing ROOT PORT_FILE``: serve ``ROOT`` over HTTP on 127.0.0.1
from this process, writing the port to ``PORT_FILE`` (see
:func:`datamanifest.testing.servers.start_server_process`)."""

import os
import sys

from .servers import serve_forever

serve_forever(sys.argv[1], sys.argv[2])
os._exit(0)
