"""The `libvirt` runtime: guests under QEMU (KVM or TCG) through libvirt, locally or on a host reached
over SSH (remote.py), with its health probe (probe.py).

Importing this package imports nothing of libvirt-python; its modules do."""
