"""`runstack` (behind `make run`) on an address that is already taken stops at once with a
message naming the fix, instead of gunicorn retrying forever."""

import socket

import pytest
from django.core.management import CommandError, call_command


def test_runstack_on_a_taken_port_fails_fast_and_names_another_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(CommandError) as failure:
            call_command("runstack", bind=f"127.0.0.1:{port}")

    message = str(failure.value)
    assert f"cannot listen on 127.0.0.1:{port}" in message
    assert f"make run PORT={port + 1}" in message
