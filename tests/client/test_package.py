"""The client is what users copy into their own programs: it must import nothing of the server."""

import subprocess
import sys

from django.conf import settings

SERVER_PACKAGES = {
    "django",
    "rest_framework",
    "drf_spectacular",
    "workflows",
    "dlq",
    "resilience",
    "orchestrator_site",
}


def test_the_client_and_its_cli_import_only_httpx_and_the_standard_library():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, orchestrator_client, orchestrator_client.cli; print('\\n'.join(sys.modules))",
        ],
        cwd=settings.BASE_DIR,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    assert "httpx" in loaded
    assert not loaded & SERVER_PACKAGES
