# The two commands of the README: `make demo` runs the migration demo on a loopback
# stack, `make test` runs every check. Both install what they need and are safe to rerun.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= .demo
PYTEST_ARGS ?=
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: deps test sanity lint unit integration faults demo demo-down status ee-context bench clean

deps:
	bash scripts/install-deps.sh

test: deps
	bash scripts/sanity.sh
	$(VENV)/bin/ansible-lint --profile production
	$(PY) -m pytest tests $(PYTEST_ARGS)

sanity: deps
	bash scripts/sanity.sh

lint: deps
	$(VENV)/bin/ansible-lint --profile production

unit: deps
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: deps
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

# every fault of tests/integration/test_faults.py (make test runs a seeded few); MLOPS_FAULTS_SEED picks the points
faults: deps
	MLOPS_FAULTS=full $(PY) -m pytest tests/integration/test_faults.py $(PYTEST_ARGS)

demo: deps
	$(PY) -m tests.stack up --workdir $(DEMO_DIR)
	$(PY) -m tests.stack seed --workdir $(DEMO_DIR)
	MLOPS_DEMO_DIR=$(CURDIR)/$(DEMO_DIR) $(VENV)/bin/ansible-playbook playbooks/migrate.yml -i inventories/demo
	@echo "report: $(DEMO_DIR)/demo-state/report.md and report.html; status: ansible-playbook playbooks/status.yml -i inventories/demo"
	@echo "the stack stays up for inspection; 'make demo-down' stops it"

status: deps
	MLOPS_DEMO_DIR=$(CURDIR)/$(DEMO_DIR) $(VENV)/bin/ansible-playbook playbooks/status.yml -i inventories/demo

# The build context of the AWX/AAP execution environment (build it with podman or docker).
ee-context: deps
	rm -rf .build/ee-collection && $(VENV)/bin/ansible-galaxy collection build --output-path .build/ee-collection .
	$(VENV)/bin/ansible-builder create -f execution-environment.yml --context .build/ee-context
	@echo "podman build -t mlops-migration-ee .build/ee-context"

demo-down:
	@if [ -x $(PY) ]; then $(PY) -m tests.stack down --workdir $(DEMO_DIR); fi

bench: deps
	$(PY) benchmarks/md5_manifest.py
	$(PY) benchmarks/file_sync.py
	$(PY) benchmarks/s3_sync.py
	$(PY) benchmarks/s3_scale.py
	$(PY) benchmarks/mongo_pipeline.py
	$(PY) benchmarks/tracker_copy.py
	$(PY) benchmarks/wandb_copy.py
	$(PY) benchmarks/neptune_copy.py
	$(PY) benchmarks/clearml_copy.py
	$(PY) benchmarks/events_copy.py
	$(PY) benchmarks/postgres_merge.py
	$(PY) benchmarks/subset_keys.py

clean: demo-down
	rm -rf .build $(DEMO_DIR) .bench .pytest_cache
