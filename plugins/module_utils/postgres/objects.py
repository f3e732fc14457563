# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 objects of a project bundle, uploaded during a merge under the keys its rewritten rows name.

The stage that holds the objects' table uploads them after its references are rewritten (an object's key
follows the rewrite of the column that names it) and before its rows are inserted; a stage that fails
removes the objects it uploaded. An object already at the target with the same md5 is not sent again.
"""

from __future__ import annotations

from ansible_collections.mlops.migration.plugins.module_utils.postgres.connection import PostgresError, qualified
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import S3Error, s3_errors
from ansible_collections.mlops.migration.plugins.module_utils.s3.objects import (
    ObjectInfo,
    SourceCheck,
    head_info,
    put_verified,
)


class ObjectImport:
    """Uploads a bundle's objects into ``location`` (an S3 Location); keys renamed as the rows' column was."""

    def __init__(self, location, table, column):
        self.location = location
        self.table = qualified(table)
        self.column = column
        self.renamed = {}  # the bundle's key -> its new key, filled in by the merge's reference rewrites
        self._origin = {}  # a key as rewritten so far -> the bundle's key
        self.counts = {"found": 0, "copied": 0, "present": 0, "bytes": 0}

    def rename(self, value, new):
        """One reference rewrite turned ``value`` (the bundle's key or an earlier rewrite of it) into ``new``."""
        origin = self._origin.pop(value, value)
        self.renamed[origin] = new
        self._origin[new] = origin

    def target_key(self, key):
        return self.location.prefix + self.renamed.get(key, key)

    def upload(self, merge, check_mode=False):
        """Upload every object of the bundle; the keys this call wrote (to remove if the stage fails)."""
        written = []
        for entry in merge.bundle.objects:
            key = self.target_key(entry["key"])
            self.counts["found"] += 1
            there = head_info(self.location.client, self.location.endpoint, self.location.bucket, key)
            if there is not None and there.size == entry["bytes"] and there.etag == entry["md5"]:
                self.counts["present"] += 1
                continue
            if check_mode:
                self.counts["copied"] += 1
                continue
            path = merge.bundle.object_path(entry)
            try:
                with open(path, "rb") as body:
                    put_verified(body, SourceCheck(ObjectInfo(entry["key"], entry["bytes"], entry["md5"])), path,
                                 entry["md5"], self.location, key)
            except (S3Error, OSError) as exc:
                raise PostgresError(f"object {entry['key']} could not be uploaded to {self.location.url(key)}: {exc}") from exc
            written.append(key)
            self.counts["copied"] += 1
            self.counts["bytes"] += entry["bytes"]
        return written

    def remove(self, keys):
        for key in keys:
            with s3_errors(self.location.endpoint, self.location.bucket, key):
                self.location.client.delete_object(Bucket=self.location.bucket, Key=key)
        self.counts["copied"] -= len(keys)
