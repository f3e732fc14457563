"""Real servers on loopback for the tests and the demo: S3, ssh hosts, MLflow, MongoDB wire."""
