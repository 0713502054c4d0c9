"""``python -m lora_trainer``: what Core runs.  The job runner, and the pages Core shows
(when Core gave a port)."""

from __future__ import annotations

import os
import sys
import threading

from lora_trainer.train import runner
from lora_trainer.web import serve


def main() -> int:
    port = os.environ.get("FACEFORGE_PLUGIN_PORT")
    if port:
        server = serve(os.environ.get("FACEFORGE_PLUGIN_HOST", "127.0.0.1"), int(port))
        threading.Thread(target=server.serve_forever, name="lora-web", daemon=True).start()
    return runner.main()


if __name__ == "__main__":
    sys.exit(main())
