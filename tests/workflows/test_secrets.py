"""`{{ secrets.NAME }}`: revealing references in a config, scrubbing values from what leaves."""

import pytest

from workflows.secrets import REDACTED, SecretMissing, reveal, scrub

SECRETS = {"TOKEN": "t0k/en+1", "OTHER": "zzz-other"}


def test_references_are_revealed_whole_and_inside_text():
    config = {
        "url": "https://x.example/?k={{ secrets.TOKEN }}",
        "headers": {"Authorization": "Bearer {{secrets.OTHER}}"},
        "list": ["{{ secrets.TOKEN }}", 3],
        "untouched": "{{ a.b }} and {{ params.secrets }}",
    }

    revealed, used = reveal(config, SECRETS)

    assert revealed == {
        "url": "https://x.example/?k=t0k/en+1",
        "headers": {"Authorization": "Bearer zzz-other"},
        "list": ["t0k/en+1", 3],
        "untouched": "{{ a.b }} and {{ params.secrets }}",
    }
    assert sorted(used) == sorted(SECRETS.values())
    assert config["url"].endswith("{{ secrets.TOKEN }}")  # the original is never changed


def test_a_config_without_references_is_returned_as_is():
    config = {"a": "secrets.TOKEN is not a template"}

    assert reveal(config, SECRETS) == (config, [])


def test_an_unknown_secret_is_named_in_the_error():
    with pytest.raises(SecretMissing, match="WORKFLOW_SECRET_MISSING"):
        reveal({"x": "{{ secrets.MISSING }}"}, SECRETS)


def test_every_spelling_of_a_secret_is_scrubbed_keys_included():
    output = {
        "raw": "got t0k/en+1",
        "quoted": "https://x/?k=t0k%2Fen%2B1",
        "path_quoted": "/t0k/en%2B1",
        "plus": "k=t0k%2Fen%2B1",
        "nested": [{"t0k/en+1": "zzz-other"}],
        "number": 5,
    }

    assert scrub(output, list(SECRETS.values())) == {
        "raw": f"got {REDACTED}",
        "quoted": f"https://x/?k={REDACTED}",
        "path_quoted": f"/{REDACTED}",
        "plus": f"k={REDACTED}",
        "nested": [{REDACTED: REDACTED}],
        "number": 5,
    }


def test_scrubbing_nothing_changes_nothing():
    assert scrub({"a": "b"}, []) == {"a": "b"}
    assert scrub({"a": "b"}, [""]) == {"a": "b"}
