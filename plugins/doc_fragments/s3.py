# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of an S3 location (module_utils/s3/connection.py: location_options): a connection,
a bucket and a prefix. The suboptions are written once, in ``_LOCATION``; each fragment places
them under the option that holds a location (O(source), O(target), O(s3)).
"""

from __future__ import annotations

_LOCATION = r"""
endpoint_url:
  description:
    - URL of the S3 service, for S3-compatible servers (MinIO, SeaweedFS, Ceph); AWS when omitted.
    - Falls back to E(AWS_ENDPOINT_URL_S3) or E(AWS_ENDPOINT_URL).
  type: str
  aliases: [s3_url]
access_key:
  description: Access key ID. Falls back to E(AWS_ACCESS_KEY_ID).
  type: str
  aliases: [aws_access_key_id]
secret_key:
  description: Secret access key. Falls back to E(AWS_SECRET_ACCESS_KEY). Never logged or returned.
  type: str
  aliases: [aws_secret_access_key]
session_token:
  description: Session token for temporary credentials. Falls back to E(AWS_SESSION_TOKEN).
  type: str
  aliases: [aws_session_token]
region:
  description: Region. Falls back to E(AWS_REGION) or E(AWS_DEFAULT_REGION).
  type: str
  default: us-east-1
validate_certs:
  description: Check the endpoint's TLS certificate.
  type: bool
  default: true
ca_bundle:
  description: CA bundle to check the certificate against. Falls back to E(AWS_CA_BUNDLE).
  type: path
client:
  description:
    - Which S3 client makes the calls.
    - V(builtin) is the collection's own SigV4 client over keep-alive HTTP connections. It starts in
      milliseconds and costs little per request. It needs C(endpoint_url), C(access_key) and C(secret_key),
      and addresses buckets path-style.
    - V(boto3) uses boto3, with its credential chain (shared credentials file, instance profile, SSO) and
      AWS's own endpoints.
    - V(auto) takes V(builtin) when C(endpoint_url), C(access_key) and C(secret_key) are all set, else V(boto3).
  type: str
  choices: [auto, builtin, boto3]
  default: auto
bucket:
  description: Name of the bucket.
  type: str
  required: true
prefix:
  description: The keys below this prefix; the prefix is replaced by the other side's (or left out of bundle paths).
  type: str
  default: ""
"""

_REQUIREMENTS = r"""
requirements:
  - boto3 >= 1.28 on the host that runs the module, only for a location whose C(client) is V(boto3) (or V(auto) picks it)
"""


def _option(name, description, required=True):
    body = "".join(f"      {line}\n" if line else "\n" for line in _LOCATION.strip("\n").split("\n"))
    return (f"  {name}:\n    description: {description}\n    type: dict\n    required: {str(required).lower()}\n"
            f"    suboptions:\n{body}")


class ModuleDocFragment:
    # A source and a target location.
    DOCUMENTATION = ("options:\n" + _option("source", "The endpoint, credentials, bucket and prefix to read from.")
                     + _option("target", "The endpoint, credentials, bucket and prefix to write to.") + _REQUIREMENTS)

    # The location read from.
    SOURCE = "options:\n" + _option("source", "The endpoint, credentials, bucket and prefix to read from.") + _REQUIREMENTS

    # The location written to.
    TARGET = "options:\n" + _option("target", "The endpoint, credentials, bucket and prefix to write to.") + _REQUIREMENTS

    # A location to check (preflight).
    CHECKED = ("options:\n" + _option("s3", "The location to check, for V(s3).", required=False) + _REQUIREMENTS)
