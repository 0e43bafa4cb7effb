# shoal: `make demo` and `make test` are all a newcomer needs; both install what they need first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# qemu-system-x86, kmod (depmod) and e2fsprogs (mkfs.ext4, debugfs): the cgroup-v2 VM of `make test-v2`
# wrk: the load generator of bench/mesh.py (its Python client is the fallback)
APT_PACKAGES := etcd-server etcd-client iproute2 nftables busybox-static crun libseccomp2 qemu-system-x86 kmod e2fsprogs wrk
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

# The whole suite: the host's tests and the cgroup-v2 VM's (make test-v2). Both always run and print
# their pytest summary line; either failing fails make test. Outside CI, a user who is not root, or who
# sets SHOAL_SKIP_V2VM=1, gets the host suite only (the VM part says why it did not run); under CI=true
# it always runs.
# The VM part runs alongside lint and the host suite, at nice 19: it is CPU-bound emulation whose
# deadlines grow with the speed it measures (tests/v2vm/guest.sh), and the host suite mostly waits on its
# daemons, so the VM takes the CPU the host suite leaves and yields it whenever a host test wants it. The
# host suite starts once the guest is up (a boot is the VM's touchiest part: at most 3 min is waited).
# The VM's output is kept in build/v2vm/make-test.log and shown after the host suite's.
# V2VM_SERIAL=1 runs the VM part after the host suite instead. PYTEST_ARGS narrows the host suite.
test: setup
	@mkdir -p build/v2vm; vmlog=build/v2vm/make-test.log; t0=$$(date +%s); v2pid=""; \
	trap 'exit 130' INT TERM; trap '[ -n "$$v2pid" ] && kill $$v2pid 2>/dev/null' EXIT; \
	if [ -z "$$V2VM_SERIAL" ]; then V2VM_OPTIONAL=1 nice -n 19 $(PY) tests/v2vm/run.py >$$vmlog 2>&1 & v2pid=$$!; fi; \
	$(MAKE) --no-print-directory lint || exit 1; \
	for i in $$(seq 180); do [ -z "$$v2pid" ] || grep -q "v2vm-guest \[" $$vmlog || ! kill -0 $$v2pid 2>/dev/null && break; sleep 1; done; \
	$(VENV)/bin/pytest -q $(PYTEST_ARGS); host=$$?; th=$$(date +%s); \
	echo "== the cgroup-v2 VM part (make test-v2)$${v2pid:+, run alongside the host suite} =="; \
	if [ -n "$$v2pid" ]; then tail -n +1 -f --pid=$$v2pid $$vmlog; wait $$v2pid; v2=$$?; v2pid=""; \
	else V2VM_OPTIONAL=1 $(PY) tests/v2vm/run.py; v2=$$?; fi; \
	echo "make test: host suite exit $$host (done $$((th - t0)) s after lint began), cgroup-v2 VM suite exit $$v2 (both done after $$(($$(date +%s) - t0)) s)"; \
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
