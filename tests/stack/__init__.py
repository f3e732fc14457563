"""Real servers on loopback for the tests and the demo: S3 (SeaweedFS, MinIO), ssh hosts, MLflow, MongoDB (FerretDB, mongoeco), OpenSearch."""
