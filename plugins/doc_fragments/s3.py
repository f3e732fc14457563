# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of an S3 location (module_utils/s3/connection.py: location_options): a connection,
a bucket and a prefix.

ansible-test reads doc fragments as string literals, so the location's suboptions are written out
once per option that holds one (SOURCE, TARGET, CHECKED); keep them in step with
``location_options()``. A module with two locations extends SOURCE and TARGET.
"""

from __future__ import annotations


class ModuleDocFragment:
    # What every module with an S3 location needs.
    DOCUMENTATION = r"""
options: {}
requirements:
  - boto3 >= 1.28 on the host that runs the module, only for a location whose C(client) is V(boto3) (or V(auto) picks it)
"""

    # The location read from.
    SOURCE = r"""
options:
  source:
    description: The endpoint, credentials, bucket and prefix to read from.
    type: dict
    required: true
    suboptions:
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

    # The location written to.
    TARGET = r"""
options:
  target:
    description: The endpoint, credentials, bucket and prefix to write to.
    type: dict
    required: true
    suboptions:
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

    # A location to check (preflight).
    CHECKED = r"""
options:
  s3:
    description:
      - An S3 location. M(mlops.migration.preflight_check) checks it (for V(s3)); M(mlops.migration.subset_files) looks
        up the keys of the mappings that name a bucket at its endpoint with its credentials (each in its own bucket).
    type: dict
    required: false
    suboptions:
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
