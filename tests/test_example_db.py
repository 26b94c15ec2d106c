"""Where examples are kept: the local directory, and a second database the examples setting
names. The GitHub artifact is read only: built here without network, never downloaded."""

from __future__ import annotations

import pytest
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    GitHubArtifactDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)

from harness.errors import HarnessError
from harness.example_db import example_database
from harness.settings import load_settings
from projects import chain, make_project


def test_a_github_artifact_is_read_only_and_multiplexed_with_the_local_directory(tmp_path):
    local = tmp_path / ".harness" / "examples"
    database = example_database(local, "github-artifact://acme/shop/harness-nightly")

    artifact = GitHubArtifactDatabase("acme", "shop", artifact_name="harness-nightly",
                                      path=tmp_path / ".harness" / "github-artifacts" / "harness-nightly")
    assert database == MultiplexedDatabase(DirectoryBasedExampleDatabase(str(local)), ReadOnlyDatabase(artifact))
    # What a pull request's walk saves stays in its own directory (nothing is sent anywhere).
    database.save(b"key", b"value")
    assert list(DirectoryBasedExampleDatabase(str(local)).fetch(b"key")) == [b"value"]


def test_the_artifact_name_defaults_to_the_one_the_nightly_workflow_uploads(tmp_path):
    database = example_database(tmp_path / "examples", "github-artifact://acme/shop")
    artifact = GitHubArtifactDatabase("acme", "shop", artifact_name="harness-examples",
                                      path=tmp_path / "github-artifacts" / "harness-examples")
    assert database == MultiplexedDatabase(DirectoryBasedExampleDatabase(str(tmp_path / "examples")),
                                           ReadOnlyDatabase(artifact))


@pytest.mark.parametrize("url", ["github-artifact://acme", "github-artifact://acme/shop/name/extra",
                                 "github-artifact:///shop/name"])
def test_an_artifact_url_without_owner_and_repo_is_one_clear_error(tmp_path, url):
    with pytest.raises(HarnessError, match="is not owner/repo/artifact-name") as raised:
        example_database(tmp_path, url)
    assert 'examples = "redis://host:6379/0" or "github-artifact://owner/repo/artifact-name"' in str(raised.value)


def test_neither_redis_nor_an_artifact_is_refused(tmp_path):
    with pytest.raises(HarnessError, match="'s3://bucket' is neither a Redis URL nor a GitHub artifact"):
        example_database(tmp_path, "s3://bucket")


def test_harness_examples_names_the_database_for_one_job_without_editing_pyproject(tmp_path, monkeypatch):
    """A pull-request job reads the nightly artifact; the nightly job keeps its Redis."""
    ini = make_project(tmp_path, chain("a"))
    monkeypatch.setenv("HARNESS_EXAMPLES", "github-artifact://acme/shop")
    assert load_settings(ini).examples == "github-artifact://acme/shop"
    assert load_settings(ini, examples="redis://localhost:6379/0").examples == "redis://localhost:6379/0"
