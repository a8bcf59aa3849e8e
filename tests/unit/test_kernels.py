"""odp.kernels: parsing kernel versions and which release has what."""

from __future__ import annotations

import os

import pytest

from odp.constants import ActionType, HashAlg
from odp.errors import InvalidArgument
from odp.kernels import ACTION_FEATURES, HASH_FEATURES, NEWEST, SINCE, TESTED, TESTED_KERNELS, Feature, Kernel


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6.1", Kernel(6, 1)),
        ("6.12", Kernel(6, 12)),
        ("6.1.0-50-amd64", Kernel(6, 1)),
        ("5.15.0-91-generic", Kernel(5, 15)),
        ("6.11-rc3", Kernel(6, 11)),
        (" 4.19 ", Kernel(4, 19)),
        ((6, 1), Kernel(6, 1)),
        (Kernel(6, 6), Kernel(6, 6)),
    ],
)
def test_parse(text: str | tuple[int, int] | Kernel, expected: Kernel) -> None:
    assert Kernel.parse(text) == expected


@pytest.mark.parametrize("bad", ["", "6", "six.one", "6.x", "v6.1", "6..1", (6,), (6, 1, 0), (6, "1"), (True, 1), 6.1])
def test_a_bad_version_is_an_invalid_argument_naming_it(bad: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        Kernel.parse(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)


def test_versions_order_numerically_and_print_as_major_minor() -> None:
    assert Kernel(6, 1) < Kernel(6, 5) < Kernel(6, 12)
    assert Kernel(4, 19) < Kernel(5, 0)
    assert str(Kernel.parse("6.1.0-50-amd64")) == "6.1"
    assert Kernel(6, 12).as_tuple() == (6, 12)


def test_the_known_facts() -> None:
    # The releases the features appeared in (mainline commits; see SINCE's comments).
    assert {f: str(k) for f, k in SINCE.items()} == {
        Feature.METER_FAMILY: "4.15",
        Feature.REPLY_CMD_OF_REQUEST: "4.19",
        Feature.VPORT_UPCALL_STATS: "6.2",
        Feature.HASH_SYM_L4: "6.5",
        Feature.DROP_ACTION: "6.6",
        Feature.PSAMPLE_ACTION: "6.11",
    }
    assert ACTION_FEATURES[ActionType.DROP] is Feature.DROP_ACTION
    assert ACTION_FEATURES[ActionType.PSAMPLE] is Feature.PSAMPLE_ACTION
    assert HASH_FEATURES[HashAlg.SYM_L4] is Feature.HASH_SYM_L4
    assert HASH_FEATURES[HashAlg.L4] is None


def test_has_is_from_the_release_on() -> None:
    assert not Kernel(6, 5).has(Feature.DROP_ACTION)
    assert Kernel(6, 6).has(Feature.DROP_ACTION)
    assert Kernel(6, 12).has(Feature.DROP_ACTION)
    assert not Kernel(6, 1).has(Feature.VPORT_UPCALL_STATS) and Kernel(6, 2).has(Feature.VPORT_UPCALL_STATS)
    assert Kernel(4, 15).has(Feature.METER_FAMILY) and not Kernel(4, 14).has(Feature.METER_FAMILY)


def test_every_feature_has_a_release() -> None:
    assert set(SINCE) == set(Feature)


def test_tested_and_newest() -> None:
    assert (Kernel(6, 1), Kernel(6, 12)) == TESTED_KERNELS  # the VM's kernels (tox kernel-6.1, kernel-6.12)
    assert max(TESTED_KERNELS) == TESTED
    assert all(NEWEST.has(f) for f in Feature)
    assert max(SINCE.values()) == NEWEST


def test_running_is_unames(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.uname()

    def fake(release: str) -> os.uname_result:
        return os.uname_result((real.sysname, real.nodename, release, real.version, real.machine))

    monkeypatch.setattr(os, "uname", lambda: fake("6.1.0-50-amd64"))
    assert Kernel.running() == Kernel(6, 1)
    # A release that is not MAJOR.MINOR (a custom build) is taken as the newest known.
    monkeypatch.setattr(os, "uname", lambda: fake("mykernel"))
    assert Kernel.running() == NEWEST


def test_tox_tests_each_tested_kernel() -> None:
    # tox.ini repeats TESTED_KERNELS (a kernel-X env per VM kernel, an
    # integration run per simulated kernel): keep the two in step.
    import re
    from pathlib import Path

    tox = (Path(__file__).parents[2] / "tox.ini").read_text()
    want = {str(k) for k in TESTED_KERNELS}
    assert set(re.findall(r"--sim-kernel=(\S+)", tox)) == want
    (envs,) = re.findall(r"\[testenv:kernel-\{([^}]*)\}\]", tox)
    assert set(envs.split(",")) == want
