"""The AWX/AAP data under awx/ and the execution environment definition."""

import glob
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.mlops.migration.plugins.filter.checked_plan import checked_plan

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)


def load(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


TEMPLATES = load("awx", "job_templates.yml")["job_templates"]
PLAN_SPEC = load("roles", "migration", "meta", "argument_specs.yml")["argument_specs"]["plan"]["options"]
PLAN = {"mongo": {"source": {"uri": "mongodb://a"}, "target": {"uri": "mongodb://b"}},
        "events": {"source": {"url": "http://search-a:9200"}, "target": {"url": "http://search-b:9200"}}}
STEPS = load("roles", "migration", "defaults", "main.yml")["migration_steps_by_type"]


@pytest.mark.parametrize("template", TEMPLATES, ids=[t["name"] for t in TEMPLATES])
def test_every_template_names_an_existing_playbook_and_valid_extra_vars(template):
    assert os.path.isfile(os.path.join(REPO, template["playbook"])), template["playbook"]
    assert template["job_type"] in ("run", "check")
    checked = checked_plan(dict(template.get("extra_vars") or {}, migration=PLAN), PLAN_SPEC)
    if template["playbook"] == "playbooks/migrate.yml":  # the steps of its type, the events among them
        assert checked["migration"]["events"]["mode"] == "direct"
        steps = STEPS[template["extra_vars"]["migration_type"]]
        assert ("events" in steps) == (template["extra_vars"]["migration_type"] != "files")
        assert ("search events" in template["description"]) == ("events" in steps), template["description"]
    if template.get("survey_enabled"):
        assert os.path.isfile(os.path.join(REPO, "awx", template["survey_spec"]))


def survey_answers():
    """Every answer a survey offers (each choice, and the default), one question at a time."""
    for path in sorted(glob.glob(os.path.join(REPO, "awx", "surveys", "*.yml"))):
        survey = load(path)
        assert survey["spec"], path
        for question in survey["spec"]:
            assert {"question_name", "variable", "type", "required"} <= set(question)
            for answer in question.get("choices") or [question.get("default", "")]:
                yield os.path.basename(path), question["variable"], answer


@pytest.mark.parametrize("survey, variable, answer", list(survey_answers()))
def test_every_survey_answer_passes_the_plan_check(survey, variable, answer):
    plan = checked_plan({"migration": PLAN, variable: answer}, PLAN_SPEC)
    assert variable in plan, f"{survey}: {variable} is not a variable the playbook checks"


def test_a_survey_answer_outside_the_choices_is_refused():
    with pytest.raises(Exception, match="migration_scope"):
        checked_plan({"migration": PLAN, "migration_scope": "team"}, PLAN_SPEC)


def test_the_execution_environment_builds_a_context_with_the_collection(tmp_path):
    ee = load("execution-environment.yml")
    assert ee["version"] == 3
    for key in ("python", "system"):
        assert os.path.isfile(os.path.join(REPO, ee["dependencies"][key]))
    collection_dir = os.path.join(REPO, ".build", "ee-collection")
    os.makedirs(collection_dir, exist_ok=True)
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path",
                    collection_dir, REPO], check=True, capture_output=True, text=True)
    context = tmp_path / "context"
    proc = subprocess.run([os.path.join(BIN, "ansible-builder"), "create", "-f", "execution-environment.yml",
                           "--context", str(context), "--output-filename", "Containerfile"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    assert "ansible-galaxy collection install /tmp/mlops-migration/*.tar.gz" in containerfile
    assert glob.glob(str(context / "_build" / "collection" / "mlops-migration-*.tar.gz"))
    assert (context / "_build" / "requirements.txt").exists() and (context / "_build" / "bindep.txt").exists()
