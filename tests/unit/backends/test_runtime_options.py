"""Each runtime reads its own options from InstanceSpec.options; the generic spec holds only what every
kind shares. An option another runtime reads is refused in one line naming this runtime's options."""

from __future__ import annotations

import dataclasses

import pytest

from vmlab.backends.base import ContainerOptions, InstanceSpec, NoOptions, runtime_options
from vmlab.backends.libvirt.options import LibvirtOptions
from vmlab.errors import UsageError


def test_the_generic_spec_names_no_runtime_option() -> None:
    names = {f.name for f in dataclasses.fields(InstanceSpec)}
    assert not names & {"kernel_args", "firmware", "publish_ports"}


def test_none_gives_the_runtime_defaults_and_its_own_object_passes() -> None:
    assert runtime_options(LibvirtOptions, None, "libvirt") == LibvirtOptions("", None)
    own = ContainerOptions(publish_ports=(8080,))
    assert runtime_options(ContainerOptions, own, "docker") is own


def test_a_mapping_is_parsed_into_the_runtime_options() -> None:
    got = runtime_options(LibvirtOptions, {"kernel_args": "mitigations=off"}, "libvirt")
    assert got == LibvirtOptions(kernel_args="mitigations=off", firmware=None)
    assert runtime_options(ContainerOptions, {"publish_ports": [80]}, "docker").publish_ports == (80,)


def test_another_runtimes_option_is_one_line_naming_this_ones() -> None:
    with pytest.raises(UsageError) as e:
        runtime_options(ContainerOptions, {"kernel_args": "quiet"}, "docker")
    assert e.value.one_line() == (
        "runtime docker has no option kernel_args (fix: its options: publish_ports)"
    )
    with pytest.raises(UsageError) as e:
        runtime_options(NoOptions, {"publish_ports": (80,)}, "podman")
    assert e.value.one_line() == "runtime podman has no option publish_ports (fix: it has none)"


def test_bad_values_are_refused_by_the_runtime_options() -> None:
    with pytest.raises(UsageError, match="port 70000"):
        ContainerOptions(publish_ports=(70000,))
    with pytest.raises(UsageError, match="options of type LibvirtOptions"):
        runtime_options(ContainerOptions, LibvirtOptions(), "docker")
