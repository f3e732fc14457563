"""Unit tests of module_utils/common.py."""

from ansible_collections.mlops.migration.plugins.module_utils.common import failure_summary


def test_failure_summary_names_the_first_five():
    failures = [{"object": f"k{i}", "reason": "boom"} for i in range(7)]
    msg = failure_summary({"failed": 7, "failures": failures}, "object(s) not imported")
    assert msg.startswith("7 object(s) not imported (k0: boom; k1: boom")
    assert "k4: boom)" in msg and "k5" not in msg


def test_userinfo_is_split_off_and_masked():
    from ansible_collections.mlops.migration.plugins.module_utils.common import masked_uri, split_userinfo

    assert split_userinfo("mongodb://bob:p%40ss:w@db1:27017,db2/?authSource=admin") == (
        "mongodb://db1:27017,db2/?authSource=admin", "bob", "p@ss:w")
    assert split_userinfo("https://tok@mlflow.example.com/x") == ("https://mlflow.example.com/x", "tok", None)
    assert split_userinfo("http://127.0.0.1:5000") == ("http://127.0.0.1:5000", None, None)
    assert masked_uri("mongodb://bob:p%40ss@db:27017/") == "mongodb://bob:***@db:27017/"
    assert masked_uri("http://h:1/?q=@") == "http://h:1/?q=@"


def test_passwords_inside_uris_become_no_log_values():
    from ansible_collections.mlops.migration.plugins.module_utils.common import protect_uri_secrets

    class Module:
        no_log_values = set()

    module = Module()
    protect_uri_secrets(module, "mongodb://bob:p%40ss@db/", None, "http://h:1")
    assert module.no_log_values == {"p@ss", "p%40ss"}
