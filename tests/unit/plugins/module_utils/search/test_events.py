"""Unit tests of module_utils/search/events.py: URLs rewritten inside ClearML events, console lines kept."""

import base64
import json
import zlib

from ansible_collections.mlops.migration.plugins.module_utils.rewrite import parse_rules
from ansible_collections.mlops.migration.plugins.module_utils.search.events import EventRewriter

OLD, NEW = "http://files.old:8081/", "s3://target-bucket/files/"
RULES = parse_rules([{"from": OLD, "to": NEW, "match": "prefix"}])


def plot(urls):
    return json.dumps({"data": [], "layout": {"images": [{"source": url} for url in urls]}})


def test_debug_image_urls_and_plots_are_rewritten_and_console_lines_kept():
    rewriter = EventRewriter(RULES)
    image = rewriter({"type": "training_debug_image", "url": OLD + "p/t/metrics/img.png", "task": "t"})
    assert image["url"] == NEW + "p/t/metrics/img.png"
    text = plot([OLD + "a.png", "http://elsewhere/b.png"])
    plotted = rewriter({"type": "plot", "plot_str": text, "plot_len": len(text), "source_urls": [OLD + "a.png"]})
    assert json.loads(plotted["plot_str"])["layout"]["images"][0]["source"] == NEW + "a.png"
    assert OLD not in plotted["plot_str"] and "http://elsewhere/b.png" in plotted["plot_str"]
    assert plotted["plot_len"] == len(plotted["plot_str"]) and plotted["source_urls"] == [NEW + "a.png"]
    line = {"type": "log", "msg": f"uploaded {OLD}p/t/model.pt", "task": "t"}
    assert rewriter(line) == line
    assert rewriter.rewritten == 3  # url, plot_str, source_urls[0]


def test_compressed_plots_are_rewritten_and_compressed_again():
    text = plot([OLD + f"img-{n}.png" for n in range(200)])
    stored = base64.encodebytes(zlib.compress(text.encode(), level=1)).decode("ascii")
    event = EventRewriter(RULES)({"type": "plot", "plot_data": stored, "plot_len": len(text)})
    after = zlib.decompress(base64.b64decode(event["plot_data"])).decode()
    assert after == text.replace(OLD, NEW) and "plot_str" not in event
    untouched = {"type": "plot", "plot_data": base64.encodebytes(zlib.compress(b'{"data": []}', 1)).decode()}
    assert EventRewriter(RULES)(dict(untouched)) == untouched  # no URL: the stored bytes stay


def test_rules_with_paths_apply_only_there():
    rules = parse_rules([{"from": OLD, "to": NEW, "match": "prefix", "paths": ["url"]}])
    doc = {"url": OLD + "x.png", "other": OLD + "y.png", "msg": OLD}
    assert EventRewriter(rules)(doc) == {"url": NEW + "x.png", "other": OLD + "y.png", "msg": OLD}
