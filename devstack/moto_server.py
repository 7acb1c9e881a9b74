"""moto's server app on a socket the stack binds itself, behind S3's presigned-PUT check.

moto's own ThreadedMotoServer binds inside its thread, where werkzeug answers a taken port with a
message and `sys.exit(1)`: the thread dies and `start()` waits forever for a server that never came.
Here the socket is bound in the caller's thread, so a taken port is an OSError the stack can name,
and the app served is moto's wrapped in `PresignedPutCheck` (devstack/presigned.py).
"""

import socket
import threading
from collections.abc import Mapping

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from devstack.presigned import PresignedPutCheck


class MotoServer:
    def __init__(self, host: str, port: int, *, secret_keys: Mapping[str, str]):
        """Binds at once (OSError when it cannot); `secret_keys`: access key id -> secret key of the
        credentials whose presigned URLs are checked."""
        app = PresignedPutCheck(DomainDispatcherApplication(create_backend_app), secret_keys)
        listening = socket.create_server((host, port))
        try:
            # werkzeug serves a socket it is given (fd=) without binding one of its own; it keeps a
            # duplicate of the descriptor, so ours is closed either way.
            self._server: BaseWSGIServer = make_server(
                host, port, app, threaded=True, request_handler=MotoRequestHandler, fd=listening.fileno()
            )
        finally:
            listening.close()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> "MotoServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="devstack-moto", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()  # serve_forever closes the socket as it returns
            self._thread.join()
        else:
            self._server.server_close()
