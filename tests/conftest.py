"""pytest fixtures for yubin's integration tests (tests/proto, tests/cli).

Run them with Debian's pytest:

    /usr/bin/python3 -m pytest -q tests
    YUBIN_BIN=build-asan/yubin /usr/bin/python3 -m pytest -q tests

Fixtures:
  yubin_factory         function scope: make(overrides=None, start=True,
                        provision=None) -> Instance; every instance made is
                        stopped with SIGTERM at the end of the test, which
                        must exit 0 with a log free of sanitizer reports.
  module_yubin_factory  the same, shared by one test module.
  instance              an unstarted Instance (config only), for CLI tests.

`overrides` is {section: {key: value}}; a value of None removes the key.
`provision(inst)` runs before the server starts (CLI provisioning).
Set YUBIN_KEEP=1 to keep the temp folders.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import yubintest  # noqa: E402


def pytest_report_header(config):
    return "yubin binary: %s" % yubintest.YUBIN_BIN


@pytest.fixture(scope="session", autouse=True)
def _binary_exists():
    if not os.access(yubintest.YUBIN_BIN, os.X_OK):
        pytest.exit("no yubin binary at %s (build it, or set YUBIN_BIN)"
                    % yubintest.YUBIN_BIN, returncode=2)


class Factory:
    def __init__(self):
        self.instances = []

    def __call__(self, overrides=None, start=True, provision=None,
                 config_text=None):
        inst = yubintest.Instance(overrides, config_text=config_text)
        self.instances.append(inst)
        if provision is not None:
            provision(inst)
        if start:
            inst.start()
        return inst

    def finish(self):
        problems = []
        for inst in self.instances:
            if inst.running():
                rc = inst.stop()
                if rc != 0:
                    problems.append("yubin serve exited %r after SIGTERM (want 0)\n%s"
                                    % (rc, inst.log()))
                    continue
            lines = yubintest.sanitizer_lines(
                inst.log() if os.path.exists(inst.log_path) else "")
            if lines:
                problems.append("sanitizer report in the server log\n%s" % inst.log())
        for inst in self.instances:
            if not problems and not os.environ.get("YUBIN_KEEP"):
                inst.cleanup()
            else:
                sys.stderr.write("kept %s\n" % inst.dir)
        if problems:
            raise AssertionError("\n\n".join(problems))


@pytest.fixture
def yubin_factory():
    f = Factory()
    yield f
    f.finish()


@pytest.fixture(scope="module")
def module_yubin_factory():
    f = Factory()
    yield f
    f.finish()


@pytest.fixture
def instance(yubin_factory):
    """An installation with a config file and no server running."""
    return yubin_factory(start=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed test, attach the logs of the servers it used."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    seen = set()
    funcargs = getattr(item, "funcargs", {})
    for name, value in funcargs.items():
        insts = []
        if isinstance(value, yubintest.Instance):
            insts = [value]
        elif isinstance(value, Factory):
            insts = value.instances
        for inst in insts:
            if id(inst) in seen or not os.path.exists(inst.log_path):
                continue
            seen.add(id(inst))
            rep.sections.append(("yubin log (%s, %s)" % (name, inst.dir), inst.log()))
