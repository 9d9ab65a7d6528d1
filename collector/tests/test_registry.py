"""Projects: ids carry the region, tokens are stored hashed and checked in constant time."""

import pytest

from telly_autoinst.errors import ConfigError
from telly_autoinst_collector.registry import create_project, token_matches


def test_token_is_stored_hashed(store):
    project_id, token = create_project(store, "demo", "eu")
    row = store.project(project_id)
    assert project_id.startswith("eu-") and row["region"] == "eu"
    assert token not in str(row.values()) and len(token) >= 40
    assert token_matches(row, token) and not token_matches(row, token[:-1] + "x") and not token_matches(row, None)


def test_explicit_ids_and_duplicates(store):
    project_id, _ = create_project(store, "old telly project", "us", project_id="6f1c2f7e-1b7a-4d55-9c1e-1234567890ab")
    assert project_id == "6f1c2f7e-1b7a-4d55-9c1e-1234567890ab"
    with pytest.raises(ConfigError, match="already registered"):
        create_project(store, "again", "us", project_id=project_id)
    with pytest.raises(ConfigError, match="region"):
        create_project(store, "x", "mars")


@pytest.mark.parametrize("bad", ["../../etc", "a b", "x/y", "p" * 129, "p" * 200, "", "é", "a\nb"])
def test_an_id_that_ingestion_refuses_cannot_be_registered(store, bad):
    with pytest.raises(ConfigError, match="not a project id"):
        create_project(store, "bad", "us", project_id=bad)
    assert store.project_ids("us") == []
