"""Unit tests of module_utils/common.py."""

from ansible_collections.mlops.migration.plugins.module_utils.common import failure_summary


def test_failure_summary_names_the_first_five():
    failures = [{"key": f"k{i}", "reason": "boom"} for i in range(7)]
    msg = failure_summary({"failed_count": 7, "failures": failures}, "not imported")
    assert msg.startswith("7 object(s) not imported (k0: boom; k1: boom")
    assert "k4: boom)" in msg and "k5" not in msg
