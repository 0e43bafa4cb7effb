# shoal: `make demo` and `make test` are all a newcomer needs; both install what they need first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# qemu-system-x86, kmod (depmod) and e2fsprogs (mkfs.ext4, debugfs): the cgroup-v2 VM of `make test-v2`
APT_PACKAGES := etcd-server etcd-client iproute2 nftables busybox-static crun libseccomp2 qemu-system-x86 kmod e2fsprogs
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-v2 lint proto proto-check unit clean

setup: $(STAMP)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@# setuptools' editable finder costs every start of this venv's Python ~20 ms: a light one in its place
	$(PY) deploy/editable.py
	@touch $(STAMP)

demo: setup
	@deploy/demo.sh

lint: setup
	$(VENV)/bin/ruff check .
	@# import-linter needs the installed layout (the folders mapped onto shoal.*), so lint a built copy
	@# (without build/lib, where a module that moved away would linger)
	@rm -rf build/lint build/lib && $(PY) -m pip install -q --no-deps --no-build-isolation --target build/lint . 2>/dev/null
	cd build/lint && PYTHONPATH=. ../../$(VENV)/bin/lint-imports --config ../../pyproject.toml --no-cache
	@# mypy on the same copy (modules and settings: [tool.mypy] in pyproject.toml); paths are mapped back to the folders
	cd build/lint && ../../$(VENV)/bin/mypy --config-file ../../pyproject.toml --cache-dir ../mypy-cache \
		| sed -E 's#^shoal/(manager|worker|runtime)/#\1/#; s#^shoal/proto/#proto/#'; test $${PIPESTATUS[0]} -eq 0
	$(PY) proto/gen.py --check

# The whole suite: the host's tests, then the cgroup-v2 VM's (make test-v2). Both always run and print
# their pytest summary line; either failing fails make test. Outside CI, a user who is not root, or who
# sets SHOAL_SKIP_V2VM=1, gets the host suite only (the VM part says why it did not run); under CI=true
# it always runs.
test: setup lint
	@$(VENV)/bin/pytest -q; host=$$?; \
	echo "== the cgroup-v2 VM part (make test-v2) =="; \
	V2VM_OPTIONAL=1 $(PY) tests/v2vm/run.py; v2=$$?; \
	echo "make test: host suite exit $$host, cgroup-v2 VM suite exit $$v2"; \
	test $$host -eq 0 -a $$v2 -eq 0

# The runtime suite, the device filter, a lab and the walking skeleton again, in a VM whose
# /sys/fs/cgroup is cgroup2 only (as on real hosts): Debian's kernel package under qemu via virtme-ng.
# See tests/v2vm/README.md. Ends with pytest's summary line; make test-v2 ARGS="-k oom" filters the list.
test-v2: setup
	$(PY) tests/v2vm/run.py $(ARGS)

unit: setup
	$(VENV)/bin/pytest -q tests/unit

proto: setup
	$(PY) proto/gen.py

clean:
	rm -rf $(VENV) build *.egg-info
