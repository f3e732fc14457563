"""Directory markers of an S3 bundle import: a missing marker is put, a present one left alone, and any
other answer of the server (credentials refused) fails as its typed error instead of being taken for a
missing marker. A stub client stands in for the server: this is a pure unit test of the decision."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.s3.bundle import ensure_markers
from ansible_collections.mlops.migration.plugins.module_utils.s3.client import ClientError
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import S3CredentialsRefused
from ansible_collections.mlops.migration.plugins.module_utils.s3.objects import TransferReport


class Endpoint:
    label = "https://s3.example"


class Client:
    def __init__(self, answers):
        self.answers, self.put = answers, []

    def head_object(self, Bucket, Key):  # noqa: N803  pylint: disable=invalid-name  # boto3's names
        answer = self.answers[Key]
        if answer != 200:
            raise ClientError(*answer, "HeadObject")
        return {}

    def put_object(self, Bucket, Key, Body):  # noqa: N803  pylint: disable=invalid-name
        self.put.append(Key)


class Target:
    def __init__(self, answers):
        self.endpoint, self.bucket, self.prefix, self.client = Endpoint(), "b", "p/", Client(answers)


def test_a_missing_marker_is_put_and_a_present_one_left_alone():
    target, report = Target({"p/empty/": ("404", "Not Found", 404), "p/here/": 200}), TransferReport()
    ensure_markers(target, ["empty/", "here/"], report)
    assert target.client.put == ["p/empty/"] and (report.found, report.copied, report.already_present) == (2, 1, 1)


def test_check_mode_puts_nothing():
    target = Target({"p/empty/": ("NoSuchKey", "gone", 404)})
    ensure_markers(target, ["empty/"], TransferReport(dry_run=True), check_mode=True)
    assert target.client.put == []


def test_refused_credentials_fail_instead_of_writing():
    target = Target({"p/empty/": ("AccessDenied", "denied", 403)})
    with pytest.raises(S3CredentialsRefused, match="rejected the credentials for s3://b/p/empty/"):
        ensure_markers(target, ["empty/"], TransferReport())
    assert target.client.put == []
