"""The os-virt lab: a container built by hand from namespaces, cgroups, seccomp and capabilities."""
